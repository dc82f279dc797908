"""The CORS policy in force in this process, kept in step with the index.

Precedence: settings stored through the admin API win over the ``[cors]``
table of the configuration file (and its environment variables) until they are
handed back with ``DELETE /admin/cors``. At start the stored row is read once;
afterwards a background task reads the row's version about once a second and
swaps the process's `PolicyHolder` when it grew, so every process sharing the
index follows a change within about a second.

Known limits: versions only grow (the row is never removed), so an index
restored from an older backup while the server runs is noticed only after a
restart; and two administrators editing at once do not see each other's
change before saving: the last save wins (each is in the audit log).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import anyio
import anyio.to_thread

from ..cors import CorsConfigError, CorsPolicy, PolicyHolder
from ..cors.store import CorsSettingStore, StoredSetting

logger = logging.getLogger(__name__)

# How often each process asks the index whether the settings changed; the
# promise of docs/admin.md is "every replica within 2 seconds".
POLL_INTERVAL = 1.0

RETURN_TO_FILE = (
    "DELETE /admin/cors (the admin page's 'Use configuration file' button) "
    "returns to them"
)


class LiveCorsSettings:
    """The policy in force here, where it came from, and how to change it.

    `configured` is the policy of the configuration file and environment;
    `version` the version of the index row last applied (0: none yet);
    `from_admin` whether the policy in force was set through the admin API.
    Changes are applied on the event loop only, so no lock is needed.
    """

    def __init__(
        self, holder: PolicyHolder, configured: CorsPolicy, store: CorsSettingStore
    ):
        self.holder = holder
        self.configured = configured
        self.store = store
        self.version = 0
        self.updated_at: datetime | None = None
        self.from_admin = False
        self._index_failing = False

    @property
    def policy(self) -> CorsPolicy:
        return self.holder.current

    def load(self) -> None:
        """At start: take the stored settings, if any, over the configured ones."""
        stored = self.store.read()
        if stored is None:
            return

        self.version = stored.version
        self.updated_at = stored.updated_at
        if stored.value is None:
            return
        try:
            policy, _ = CorsPolicy.from_azure_json(stored.value)
        except CorsConfigError as exc:
            logger.error(
                "the CORS settings stored in the index (version %d) are not valid "
                "(%s); the configured [cors] settings are in force instead; a "
                "PUT /admin/cors replaces the stored ones",
                stored.version,
                exc,
            )
            return
        self.holder.replace(policy)
        self.from_admin = True
        logger.warning(
            "the CORS settings set through the admin API (version %d, %s) are in "
            "force, not the [cors] settings of the configuration file and "
            "environment; %s",
            stored.version,
            _when(stored.updated_at),
            RETURN_TO_FILE,
        )

    async def replace(self, policy: CorsPolicy) -> tuple[dict[str, Any], StoredSetting]:
        """Store `policy` as the next version and put it in force here at once.

        Returns the settings it replaced (Azure JSON) and the new row.
        """
        old, new = await anyio.to_thread.run_sync(
            self.store.write, policy.to_azure_json()
        )
        self._apply(new)
        return self._value_of(old), new

    async def reset(self) -> tuple[dict[str, Any], StoredSetting]:
        """Hand the settings back to the configuration file, here and everywhere."""
        old, new = await anyio.to_thread.run_sync(self.store.write, None)
        self._apply(new)
        return self._value_of(old), new

    def _value_of(self, stored: StoredSetting | None) -> dict[str, Any]:
        if stored is None or stored.value is None:
            return self.configured.to_azure_json()
        return stored.value

    def _apply(self, stored: StoredSetting) -> bool:
        """Put a newer version in force; an older one (read before a change made
        here had committed) is ignored. Returns whether anything changed."""
        if stored.version <= self.version:
            return False

        if stored.value is None:
            policy = self.configured
        else:
            try:
                policy, _ = CorsPolicy.from_azure_json(stored.value)
            except CorsConfigError as exc:
                # Written by another version of dicomhub, or by hand.
                logger.error(
                    "the CORS settings version %d in the index are not valid (%s); "
                    "the settings in force stay unchanged",
                    stored.version,
                    exc,
                )
                self.version = stored.version
                return False

        self.holder.replace(policy)
        self.version = stored.version
        self.updated_at = stored.updated_at
        self.from_admin = stored.value is not None
        return True

    async def poll(self) -> None:
        """One look at the index: apply the stored settings if they are newer."""
        try:
            version = await anyio.to_thread.run_sync(self.store.version)
            if version > self.version:
                stored = await anyio.to_thread.run_sync(self.store.read)
                if stored is not None and self._apply(stored):
                    logger.info(
                        "CORS settings version %d from the index are in force (%s)",
                        stored.version,
                        "set through the admin API"
                        if self.from_admin
                        else "the configured [cors] settings",
                    )
        except Exception as exc:  # the loop must outlive a failing index
            if not self._index_failing:
                logger.warning(
                    "could not read the CORS settings from the index (%s: %s); the "
                    "settings in force stay until it answers",
                    type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "no detail",
                )
            self._index_failing = True
            return
        if self._index_failing:
            logger.info("the index answers again; CORS settings are followed")
            self._index_failing = False

    async def follow(self, interval: float = POLL_INTERVAL) -> None:
        while True:
            await anyio.sleep(interval)
            await self.poll()

    @asynccontextmanager
    async def lifespan(self, app: object) -> AsyncIterator[None]:
        """Starlette's lifespan: follow the index while the server runs."""
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self.follow)
            yield
            tasks.cancel_scope.cancel()


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "time unknown"
    return "set " + moment.strftime("%Y-%m-%d %H:%M:%S UTC")
