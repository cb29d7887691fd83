"""`leasefs backup DEST`: an online copy of a coordinator's data, taken while it serves.

The copy is consistent (the database as of one moment, then every blob it names, checked by
hash) and lands in DEST only once whole; `leasefs serve --data DEST` starts from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .._config import default_data_dir


def backup(
    destination: Annotated[Path, typer.Argument(help="A new folder to hold the copy.")],
    data: Annotated[
        Path | None,
        typer.Option(
            help="The data folder of the coordinator to copy (default: the embedded one's)."
        ),
    ] = None,
) -> None:
    """Copy a running coordinator's data (database, blobs, admin secret) into DEST."""
    from coordinator import BackupError
    from coordinator import backup as take_backup

    source = data or default_data_dir() / "coordinator"

    def say(line: str) -> None:
        typer.echo(f"leasefs backup: {line}", err=True)

    try:
        report = take_backup(source, destination.absolute(), say)
    except BackupError as exc:
        typer.echo(f"leasefs: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"backed up {source} to {report.destination}: database {report.database_bytes:,} "
        f"bytes, {report.blobs:,} blobs ({report.blob_bytes:,} bytes) in {report.seconds:.1f} s"
        f"\n  start from it with: leasefs serve --data {report.destination}"
    )
    for kind, digests in (("missing", report.missing), ("damaged", report.damaged)):
        if digests:
            typer.echo(
                f"leasefs: warning: {len(digests)} blob(s) the database names are {kind} in "
                f"{source} and were not copied (the first: {digests[0]}); versions with them "
                "cannot be read from the copy either",
                err=True,
            )


def register(app: typer.Typer) -> None:
    app.command()(backup)
