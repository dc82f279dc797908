"""The ``dicomhub`` command: serve, upload, cors."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from .config import ConfigError, load_settings

app = typer.Typer(
    help="dicomhub: a DICOMweb server (PS3.18) with Azure-style CORS settings.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """dicomhub: a DICOMweb server (PS3.18) with Azure-style CORS settings."""


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"dicomhub: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def serve(
    config: Annotated[
        Path | None,
        typer.Option(help="TOML settings file (tables server, cors, storage, index)"),
    ] = None,
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="where the index and the instances live")
    ] = None,
    log_level: Annotated[
        str, typer.Option(help="debug, info, warning or error")
    ] = "info",
) -> None:
    """Run the DICOMweb server (root /v2, health at /health)."""
    import uvicorn

    from .app import create_app

    if log_level.lower() not in ("debug", "info", "warning", "error"):
        _fail(f"--log-level {log_level!r}: expected debug, info, warning or error")
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = load_settings(config, host=host, port=port, data_dir=data_dir)
        application = create_app(settings)
    except ConfigError as exc:
        _fail(f"invalid setting: {exc}")
        return

    uvicorn.run(
        application,
        host=settings.server.host,
        port=settings.server.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
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


def main() -> None:
    app()
