"""Online backups of a coordinator's data folder, taken while it serves.

The database is copied with SQLite's backup API in one step: one read transaction, so the
copy is the database as of one moment, and in WAL mode writers go on meanwhile. Then every
blob that copy names is copied by its hash and checked against it on the way (blob files are
immutable and written before their row, so each named one is already complete). The admin
secret's hash comes along. Everything goes into a new folder beside the destination, renamed
into place only once whole, so a backup interrupted half-way leaves nothing that looks done.
`leasefs serve --data DEST` starts from the result.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ._admission import ADMIN_SECRET_FILE

DATABASE_FILE = "coordinator.sqlite3"
_CHUNK = 1 << 20


class BackupError(Exception):
    """The backup could not be taken; the message says why and nothing was left behind."""


@dataclass
class BackupReport:
    """What a backup holds, and what it could not take from the source."""

    destination: Path
    database_bytes: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    missing: list[str] = field(default_factory=list)  # named by the database, absent on disk
    damaged: list[str] = field(default_factory=list)  # on disk, but not matching their hash
    seconds: float = 0.0


def backup(
    data_dir: Path, destination: Path, progress: Callable[[str], None] = lambda _: None
) -> BackupReport:
    """Copy the coordinator data in ``data_dir`` to the new folder ``destination``."""
    database = data_dir / DATABASE_FILE
    if not database.is_file():
        raise BackupError(f"{data_dir} holds no coordinator database ({DATABASE_FILE})")
    if destination.exists():
        raise BackupError(f"{destination} exists already: a backup goes into a new folder")
    if not destination.parent.is_dir():
        raise BackupError(f"{destination.parent} is not a folder")
    started = time.monotonic()
    partial = destination.with_name(f".{destination.name}.partial-{secrets.token_hex(4)}")
    partial.mkdir(mode=0o700)
    report = BackupReport(destination)
    try:
        progress(f"copying the database {database} ({database.stat().st_size:,} bytes)")
        hashes = _copy_database(database, partial / DATABASE_FILE)
        report.database_bytes = (partial / DATABASE_FILE).stat().st_size
        for number, digest in enumerate(hashes, 1):
            if number % 500 == 0 or number == len(hashes):
                progress(f"blobs: {number:,} of {len(hashes):,}")
            _copy_blob(data_dir / "blobs", partial / "blobs", digest, report)
        secret = data_dir / ADMIN_SECRET_FILE
        if secret.exists():
            shutil.copy2(secret, partial / ADMIN_SECRET_FILE)
        _sync_tree(partial)
        partial.rename(destination)
        _fsync_dir(destination.parent)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    report.seconds = time.monotonic() - started
    return report


def _copy_database(source: Path, target: Path) -> list[str]:
    """The database as of one moment, checked whole; returns the blob hashes it names."""
    try:
        with (
            contextlib.closing(sqlite3.connect(source, timeout=30)) as src,
            contextlib.closing(sqlite3.connect(target)) as dst,
        ):
            src.backup(dst)  # one step: one read transaction, a consistent copy
            checked = dst.execute("PRAGMA integrity_check").fetchone()[0]
            if checked != "ok":
                raise BackupError(f"the copied database fails its integrity check: {checked}")
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            rows = dst.execute("SELECT DISTINCT hash FROM blobs ORDER BY hash").fetchall()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy {source}: {exc}") from exc
    return [str(row[0]) for row in rows]


def _copy_blob(source_root: Path, target_root: Path, digest: str, report: BackupReport) -> None:
    """Copy one blob, keeping it only if its bytes match its name."""
    source = source_root / digest[:2] / digest
    target = target_root / digest[:2] / digest
    target.parent.mkdir(parents=True, exist_ok=True)
    hasher = hashlib.sha256()
    size = 0
    try:
        with open(source, "rb") as src, open(target, "wb") as dst:
            while chunk := src.read(_CHUNK):
                hasher.update(chunk)
                dst.write(chunk)
                size += len(chunk)
    except FileNotFoundError:
        target.unlink(missing_ok=True)
        report.missing.append(digest)
        return
    if hasher.hexdigest() != digest:
        target.unlink()
        report.damaged.append(digest)
        return
    report.blobs += 1
    report.blob_bytes += size


def _sync_tree(root: Path) -> None:
    """Every file and folder of the backup on disk before it is renamed into place."""
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
