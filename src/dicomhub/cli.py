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
        Path | None, typer.Option(help="TOML settings file ([server], [cors], ...)")
    ] = None,
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="where the index and the instances live")
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
) -> None:
    """Run the DICOMweb server (root /v2, health at /health)."""
    import uvicorn

    from .app import create_app

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


def main() -> None:
    app()
