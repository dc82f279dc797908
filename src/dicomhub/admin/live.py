"""The CORS policy in force in this process, kept in step with the index.

Precedence: settings stored through the admin API win over the ``[cors]``
table of the configuration file (and its environment variables) until they are
handed back with ``DELETE /admin/cors``. At start the stored row is read once;
afterwards a background task reads the row's version about once a second and,
whenever it differs from the version last seen (higher after a change, lower
or gone after an index was restored or the row removed by hand), reads the row
and puts it in force, so every process sharing the index follows it within
about a second.

Stored settings that cannot be used (they fail the validator, or the row is
unreadable) are never put in force: at start the configured settings are used
instead, later the settings in force stay; either way one ERROR is logged, and
`stored_problem` says why until a valid row replaces them.

Known limits: two administrators editing at once do not see each other's
change before saving: the last save wins (each is in the audit log). And the
row is read only when its version changed, so an edit by hand that keeps the
version (or replaces one unreadable version by another) is noticed at the next
change or restart.
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

REPLACE_STORED = "a PUT or DELETE /admin/cors replaces the stored ones"


class LiveCorsSettings:
    """The policy in force here, where it came from, and how to change it.

    `configured` is the policy of the configuration file and environment;
    `version` the version of the settings in force (0: the configured ones
    since the start, or since the row disappeared); `from_admin` whether they
    were set through the admin API; `seen` the version of the index row last
    read (0: no row; None: unreadable); `stored_problem` why that row is not
    in force, None when it is. Changes are applied on the event loop only, so
    no lock is needed.
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
        self.seen: int | None = 0
        self.stored_problem: str | None = None
        self._index_failing = False

    @property
    def policy(self) -> CorsPolicy:
        return self.holder.current

    def load(self) -> None:
        """At start: take the stored settings, if any, over the configured ones."""
        stored = self.store.read()
        if stored is None:
            return

        self.seen = stored.version
        policy, problem = self._policy_of(stored)
        if policy is None:
            self.stored_problem = problem
            logger.error(
                "the CORS settings stored in the index (version %s) are not valid "
                "(%s); the configured [cors] settings are in force instead; %s",
                _label(stored.version),
                problem,
                REPLACE_STORED,
            )
            return
        self._put_in_force(stored, policy)
        if self.from_admin:
            logger.warning(
                "the CORS settings set through the admin API (version %s, %s) are "
                "in force, not the [cors] settings of the configuration file and "
                "environment; %s",
                _label(stored.version),
                _when(stored.updated_at),
                RETURN_TO_FILE,
            )

    async def replace(self, policy: CorsPolicy) -> tuple[dict[str, Any], StoredSetting]:
        """Store `policy` as the next version and put it in force here at once.

        Returns the settings it replaced (Azure JSON, see `_replaced`) and the
        new row.
        """
        return await self._write(policy.to_azure_json())

    async def reset(self) -> tuple[dict[str, Any], StoredSetting]:
        """Hand the settings back to the configuration file, here and everywhere."""
        return await self._write(None)

    async def _write(
        self, value: dict[str, Any] | None
    ) -> tuple[dict[str, Any], StoredSetting]:
        in_force = self.policy.to_azure_json()
        known = max(self.seen or 0, self.version)
        old, new = await anyio.to_thread.run_sync(self.store.write, value, known)

        if known and (old is None or old.version is None or old.version < known):
            logger.warning(
                "the CORS settings row in the index was %s (version %d seen here): "
                "an older index restored, or a change by hand; version %s now "
                "replaces it",
                "missing" if old is None else "older or unreadable",
                known,
                _label(new.version),
            )
        # A change made here wins over what this process saw before it, but
        # not over a newer one another process stored meanwhile (read by poll).
        if new.version is not None and new.version > (self.seen or 0):
            self._apply(new)
        return self._replaced(old, in_force, known), new

    def _replaced(
        self, old: StoredSetting | None, in_force: dict[str, Any], known: int
    ) -> dict[str, Any]:
        """What a change replaced, for the audit log.

        The stored settings when they were valid and at least as new as those
        this process knew (another replica's change not yet followed here
        included); otherwise (no row, an older or unusable one) the settings
        that were in force here.
        """
        if old is None or old.version is None or old.version < known:
            return in_force
        policy, _ = self._policy_of(old)
        if policy is None:
            return in_force
        return policy.to_azure_json()

    def _policy_of(self, stored: StoredSetting) -> tuple[CorsPolicy | None, str | None]:
        """The policy a row asks for, or why it cannot be used."""
        if stored.problem is not None:
            return None, stored.problem
        if stored.value is None:
            return self.configured, None
        try:
            policy, _ = CorsPolicy.from_azure_json(stored.value)
        except CorsConfigError as exc:
            # Written by another version of dicomhub, or by hand.
            return None, str(exc)
        except RecursionError:
            return None, "its value nests lists or objects too deeply"
        return policy, None

    def _put_in_force(self, stored: StoredSetting, policy: CorsPolicy) -> None:
        self.holder.replace(policy)
        self.version = stored.version or 0
        self.updated_at = stored.updated_at
        self.from_admin = stored.value is not None
        self.seen = stored.version
        self.stored_problem = None

    def _apply(self, stored: StoredSetting) -> bool:
        """Put a row in force unless it cannot be used (then log an ERROR and
        keep the settings in force). Returns whether anything changed."""
        self.seen = stored.version
        policy, problem = self._policy_of(stored)
        if policy is None:
            self.stored_problem = problem
            logger.error(
                "the CORS settings stored in the index (version %s) are not valid "
                "(%s); the settings in force (version %d) stay unchanged; %s",
                _label(stored.version),
                problem,
                self.version,
                REPLACE_STORED,
            )
            return False
        self._put_in_force(stored, policy)
        return True

    def _lost(self) -> None:
        """The row is gone: back to the configured settings, as at a start."""
        logger.warning(
            "the CORS settings row is gone from the index (removed by hand, or an "
            "older index restored); the configured [cors] settings are in force"
        )
        self.holder.replace(self.configured)
        self.version = 0
        self.updated_at = None
        self.from_admin = False
        self.seen = 0
        self.stored_problem = None

    async def poll(self) -> None:
        """One look at the index: follow the row when its version changed."""
        try:
            version = await anyio.to_thread.run_sync(self.store.version)
            if version != self.seen:
                stored = await anyio.to_thread.run_sync(self.store.read)
                if stored is None:
                    self._lost()
                elif stored.version != self.seen:
                    self._follow(stored)
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

    def _follow(self, stored: StoredSetting) -> None:
        went_back = (
            stored.version is not None
            and self.seen is not None
            and stored.version < self.seen
        )
        if not self._apply(stored):
            return
        if went_back:
            logger.warning(
                "the CORS settings in the index went back to version %d (an older "
                "index restored, or a change by hand); they are in force",
                stored.version,
            )
        logger.info(
            "CORS settings version %s from the index are in force (%s)",
            _label(stored.version),
            "set through the admin API"
            if self.from_admin
            else "the configured [cors] settings",
        )

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


def _label(version: int | None) -> str:
    return "unreadable" if version is None else str(version)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "time unknown"
    return "set " + moment.strftime("%Y-%m-%d %H:%M:%S UTC")
