"""The ``dicomhub`` command: serve, upload, cors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from .config import (
    ConfigError,
    load_settings,
    read_raw,
    settings_from_raw,
    with_overrides,
)

app = typer.Typer(
    help="dicomhub: a DICOMweb server (PS3.18) with Azure-style CORS settings.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(wanted: bool) -> None:
    if wanted:
        from . import __version__

        typer.echo(f"dicomhub {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="print the version and exit",
        ),
    ] = False,
) -> None:
    """dicomhub: a DICOMweb server (PS3.18) with Azure-style CORS settings."""


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"dicomhub: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def serve(
    config: Annotated[
        Path | None,
        typer.Option(
            help="TOML settings file (tables server, storage, index, cors, auth)"
        ),
    ] = None,
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="where the index and the instances live")
    ] = None,
    workers: Annotated[
        str | None,
        typer.Option(
            help='server processes sharing the port: a number, or "auto" for '
            "one per CPU core (default 1)"
        ),
    ] = None,
    allow_open_access: Annotated[
        bool,
        typer.Option(
            "--allow-open-access",
            help="listen on a non-loopback address with no authentication "
            "set up: anyone who reaches the port can read, store and delete",
        ),
    ] = False,
    log_level: Annotated[
        str, typer.Option(help="debug, info, warning or error")
    ] = "info",
) -> None:
    """Run the DICOMweb server (root /v2, health at /health)."""
    import uvicorn

    from .factory import (
        SETTINGS_VARIABLE,
        check_in_own_process,
        configure_logging,
        worker_environment,
    )

    if log_level.lower() not in ("debug", "info", "warning", "error"):
        _fail(f"--log-level {log_level!r}: expected debug, info, warning or error")
    try:
        raw = with_overrides(
            read_raw(config),
            host=host,
            port=port,
            data_dir=data_dir,
            workers=workers,
            # Only when given: the flag can open, never close, what the file
            # or the environment opened.
            allow_open_access=True if allow_open_access else None,
        )
        settings = settings_from_raw(raw)
    except ConfigError as exc:
        _fail(f"invalid setting: {exc}")
        return
    configure_logging(log_level, settings.server.workers)

    options: dict[str, Any] = {
        "host": settings.server.host,
        "port": settings.server.port,
        "log_config": None,
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
    }
    if settings.server.workers == 1:
        from .app import create_app

        try:
            application = create_app(settings)
        except ConfigError as exc:
            _fail(f"invalid setting: {exc}")
            return
        uvicorn.run(application, **options)
        return

    # Before any worker starts: check every setting, migrate the index and
    # create the data folder once (dicomhub.factory).
    handed = worker_environment(raw, log_level)
    problem = check_in_own_process(handed)
    if problem is not None:
        _fail(f"invalid setting: {problem}")
    os.environ[SETTINGS_VARIABLE] = handed
    uvicorn.run(
        "dicomhub.factory:application",
        factory=True,
        workers=settings.server.workers,
        **options,
    )


@app.command()
def upload(
    paths: Annotated[
        list[Path],
        typer.Argument(help="DICOM files and folders (searched recursively)"),
    ],
    url: Annotated[
        str,
        typer.Option(help="the DICOMweb root, e.g. http://127.0.0.1:8080/v2"),
    ],
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header",
            "-H",
            help="an extra request header 'Name: value', e.g. Authorization",
        ),
    ] = None,
    batch_files: Annotated[
        int, typer.Option(min=1, help="instances per STOW-RS request at most")
    ] = 10,
    batch_mb: Annotated[
        int, typer.Option(min=1, help="megabytes per STOW-RS request, about")
    ] = 16,
) -> None:
    """Store DICOM files on a DICOMweb server with STOW-RS, with a progress bar.

    Exits 0 when every file is stored or already there, 1 otherwise.
    """
    from rich.console import Console

    from .upload import print_summary
    from .upload import upload as send

    headers: dict[str, str] = {}
    for item in header or []:
        name, colon, value = item.partition(":")
        if not colon or not name.strip():
            # The value is not echoed: it may hold a token.
            _fail("--header: expected 'Name: value', e.g. 'Authorization: Bearer ...'")
        headers[name.strip()] = value.strip()
    if not url.startswith(("http://", "https://")):
        _fail(f"--url {url!r}: expected the DICOMweb root, e.g. http://host:8080/v2")
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        _fail(f"no such file or folder: {', '.join(missing)}")

    summary = send(
        paths,
        url,
        headers=headers,
        max_files=batch_files,
        max_bytes=batch_mb * 1024**2,
    )
    print_summary(summary, Console())
    if not summary.results:
        typer.echo("dicomhub: no DICOM files found to upload", err=True)
    raise typer.Exit(0 if summary.ok else 1)


cors_app = typer.Typer(
    help="Diagnose CORS: would a browser on a given origin be let through?",
    no_args_is_help=True,
)
app.add_typer(cors_app, name="cors")


@cors_app.command("check")
def cors_check(
    origin: Annotated[
        str,
        typer.Option(
            help="the page's origin, as the browser console shows it, "
            "e.g. https://viewer.example.org"
        ),
    ],
    method: Annotated[
        str, typer.Option(help="the request's method, e.g. GET, POST, DELETE")
    ] = "GET",
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header",
            "-H",
            help="a header name the browser lists in its preflight, e.g. "
            "authorization (repeat, or separate with commas)",
        ),
    ] = None,
    credentials: Annotated[
        bool,
        typer.Option(
            "--credentials",
            help="the page sends cookies or HTTP authentication "
            "(fetch credentials: 'include')",
        ),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            help="TOML settings file; without --config and --url, the settings "
            "'dicomhub serve' would use (DICOMHUB_* environment)"
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            help="ask a running server with a real preflight: its address or "
            "DICOMweb root, e.g. http://127.0.0.1:8080/v2"
        ),
    ] = None,
    path: Annotated[
        str | None,
        typer.Option(help="with --url: the request path (default <root>/studies)"),
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="with --url: seconds to wait")
    ] = 10.0,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="show the headers a browser sees")
    ] = False,
) -> None:
    """Explain whether a browser on ORIGIN would be let through, and why.

    Exits 0 when allowed, 1 when blocked, 2 when the input or settings are
    unusable.
    """
    from .cors import parse_cors_settings
    from .cors.check import (
        CheckUsageError,
        browser_request,
        check_server,
        check_settings,
    )

    if config is not None and url is not None:
        _fail("give --config or --url, not both")
    if path is not None and url is None:
        _fail("--path needs --url: the settings apply to every path alike")

    try:
        request = browser_request(origin, method, header or [], credentials)
        if url is not None:
            verdict = check_server(request, url, path, timeout)
        else:
            settings = load_settings(config)
            policy, warnings = parse_cors_settings(settings.cors)
            for warning in warnings:
                typer.echo(f"dicomhub: warning: {warning}", err=True)
            verdict = check_settings(request, policy)
    except ConfigError as exc:
        _fail(f"invalid setting: {exc}")
        return
    except CheckUsageError as exc:
        _fail(str(exc))
        return

    for line in verdict.lines(verbose):
        typer.echo(line)
    raise typer.Exit(verdict.exit_code)


def main() -> None:
    app()
