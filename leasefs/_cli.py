"""The `leasefs` command line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import trio
import typer

from . import _settings

app = typer.Typer(
    name="leasefs",
    help="Edit-time leases for teams of AI coding agents sharing one codebase.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Edit-time leases for teams of AI coding agents sharing one codebase."""


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on (loopback unless you mean it).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port to listen on; 0 picks a free one.")
    ] = _settings.DEFAULT_PORT,
    data: Annotated[
        Path, typer.Option(help="Directory for the database and blobs.")
    ] = _settings.default_data_dir() / "coordinator",
    max_blob_bytes: Annotated[
        int, typer.Option(help="Largest snapshot blob accepted, in bytes.")
    ] = _settings.DEFAULT_MAX_BLOB_BYTES,
) -> None:
    """Run the coordinator in the foreground until Ctrl-C or SIGTERM."""
    from coordinator import ServeOptions
    from coordinator import serve as run_coordinator

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    options = ServeOptions(data_dir=data, host=host, port=port, max_blob_bytes=max_blob_bytes)

    def ready(url: str) -> None:
        print(f"leasefs coordinator listening on {url} (data in {data})", flush=True)

    try:
        trio.run(run_coordinator, options, ready)
    except OSError as exc:
        typer.echo(f"leasefs: cannot serve on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from exc


def main() -> None:
    app(prog_name="leasefs")


if __name__ == "__main__":
    sys.exit(main())
