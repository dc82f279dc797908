"""The application of each worker when ``dicomhub serve`` runs several.

uvicorn starts every worker as a fresh interpreter and imports the application
by name (``dicomhub.factory:application``), so settings cannot be handed over
as an object. The parent process reads the file, the environment and the
flags once and merges them; one short-lived process (`check_in_own_process`)
then builds the application from them, which checks every setting, migrates
the index and creates the data folder, before any worker starts. The parent
puts the merged tables into one environment variable that the workers
inherit. A worker builds its application from that variable alone and never
rereads the file or the DICOMHUB_* variables, so every worker, a replacement
for one that died included, runs with the settings that were checked.

The check runs in a process of its own so that the parent, which only watches
the workers, never imports the application: it would hold as much memory as a
worker for nothing.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sys
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .config import ConfigError, settings_from_raw

if TYPE_CHECKING:
    from starlette.types import ASGIApp

# Not DICOMHUB_<TABLE>_<KEY>: it is no setting, and read_raw must not see it.
SETTINGS_VARIABLE = "_DICOMHUB_WORKER_SETTINGS"

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# With several workers each line names the process that wrote it.
WORKERS_LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def configure_logging(level: str, workers: int) -> None:
    """The log of ``dicomhub serve``: one line per record on stderr."""
    logging.basicConfig(
        level=level.upper(),
        format=LOG_FORMAT if workers == 1 else WORKERS_LOG_FORMAT,
        stream=sys.stderr,
    )


def worker_environment(raw: Mapping[str, Mapping[str, Any]], log_level: str) -> str:
    """The value of `SETTINGS_VARIABLE` for workers of these merged tables."""
    # Values are TOML or JSON ones; `str` only meets a TOML date or time,
    # which no setting takes.
    return json.dumps({"settings": raw, "log_level": log_level}, default=str)


def check_in_own_process(handed: str) -> str | None:
    """Build the application once in a fresh process (as uvicorn starts its
    workers); the ConfigError's message, or None when the settings are usable.
    Its start-up warnings and notices are the ones logged."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        return pool.submit(_check, handed).result()


def _check(handed: str) -> str | None:
    from .app import create_app

    payload = json.loads(handed)
    try:
        settings = settings_from_raw(payload["settings"])
        configure_logging(payload["log_level"], settings.server.workers)
        create_app(settings)
    except ConfigError as exc:
        return str(exc)
    return None


def application() -> ASGIApp:
    """Build one worker's application from the settings that were checked."""
    from .app import create_app

    try:
        handed = json.loads(os.environ[SETTINGS_VARIABLE])
    except KeyError:
        raise RuntimeError(
            f"{SETTINGS_VARIABLE} is not set: dicomhub.factory:application is "
            "started by 'dicomhub serve --workers N', not on its own"
        ) from None

    settings = settings_from_raw(handed["settings"])
    configure_logging(handed["log_level"], settings.server.workers)

    with _notices_already_logged():
        return create_app(settings)


@contextmanager
def _notices_already_logged() -> Iterator[None]:
    # The check built the same application from the same settings and logged
    # its start-up warnings and notices once; N workers would repeat them N
    # times; so would Alembic, finding the schema already at the newest
    # revision. Errors still show.
    loggers = [logging.getLogger(name) for name in ("dicomhub", "alembic")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
