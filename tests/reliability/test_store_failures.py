"""The coordinator's disk full, or its database locked by another process.

Callers get a clear 503 (``store_unavailable``) naming the cause, reads go on, nothing that
was acknowledged is lost or corrupted, and service resumes by itself once space returns or
the lock goes away: no restart needed.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from leasefs import Client, RequestRejected
from leasefs.wire import MemoryCreate
from tests.helpers import CoordinatorProcess

DISK_BYTES = 16 << 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of the test's own (needs root, as CI has)."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(where)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], timeout=30, check=False)
        if os.path.ismount(where):
            subprocess.run(["umount", "-l", str(where)], timeout=30, check=False)


def _fill(directory: Path) -> Path:
    """Write a filler file until the filesystem has no space left."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        block = b"\0" * (256 << 10)
        with contextlib.suppress(OSError):
            while True:
                f.write(block)
        with contextlib.suppress(OSError):
            while True:  # the last few KiB
                f.write(b"\0" * 4096)
    return filler


def _integrity(database: Path) -> str:
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


async def _refused_as_unavailable(call: object) -> RequestRejected:
    with pytest.raises(RequestRejected) as refused:
        await call  # type: ignore[misc]
    assert refused.value.status == 503, refused.value
    assert refused.value.code == "store_unavailable"
    return refused.value


async def test_a_full_disk_is_reported_and_service_resumes_when_space_returns(
    small_disk: Path,
) -> None:
    data = small_disk / "coordinator"
    server = CoordinatorProcess(data).start()
    try:
        async with Client(server.url, timeout=30) as alice:
            await alice.ensure_workspace("full")
            await alice.register("full", "alice")
            grant = await alice.acquire(["kept.txt"])
            kept = await alice.remember(MemoryCreate(text="acknowledged before the disk filled"))

            filler = _fill(small_disk)
            refused = await _refused_as_unavailable(alice.upload_blob(os.urandom(512 << 10)))
            assert "No space left on device" in str(refused)
            failures = []
            for i in range(200):  # until the database, too, has no page left to grow into
                try:
                    await alice.remember(MemoryCreate(text=f"note {i} " + "x" * 15_000))
                except RequestRejected as exc:
                    failures.append(exc)
                    break
            assert failures, "the database never ran out of space"
            assert failures[0].status == 503 and failures[0].code == "store_unavailable"
            assert "disk is full" in str(failures[0])

            # Reads go on while the disk is full.
            assert (await alice.health()).status == "ok"
            [status] = await alice.holders(["kept.txt"])
            assert status.lease is not None and status.lease.holder.name == "alice"

            filler.unlink()
            # Service resumes by itself: no restart.
            blob = await alice.upload_blob(b"after the disk had space again\n")
            assert await alice.has_blob(blob.hash)
            await alice.remember(MemoryCreate(text="after the disk had space again"))
            await alice.acquire(["later.txt"])
            await alice.release(grant.leases)
            texts = {m.text for m in await alice.recall(limit=100)}
            assert kept.text in texts and "after the disk had space again" in texts
    finally:
        server.stop()
    assert _integrity(data / "coordinator.sqlite3") == "ok"
    assert not any((data / "blobs" / "tmp").iterdir()), "no half-written blob is left behind"


async def test_a_locked_database_is_reported_and_service_resumes_when_unlocked(
    fresh_coordinator: CoordinatorProcess,
) -> None:
    database = fresh_coordinator.data_dir / "coordinator.sqlite3"
    async with Client(fresh_coordinator.url, timeout=30) as alice:
        await alice.ensure_workspace("locked")
        await alice.register("locked", "alice")
        grant = await alice.acquire(["a.txt"])

        intruder = sqlite3.connect(database, timeout=0, isolation_level=None)
        try:
            intruder.execute("BEGIN EXCLUSIVE")
            refused = await _refused_as_unavailable(alice.acquire(["b.txt"]))
            assert "locked by another process" in str(refused)
            # Reads still answer from the last committed state (WAL).
            [status] = await alice.holders(["a.txt"])
            assert status.lease is not None
        finally:
            intruder.execute("ROLLBACK")
            intruder.close()

        await alice.acquire(["b.txt"])  # resumed
        [status] = await alice.holders(["b.txt"])
        assert status.lease is not None and status.lease.holder.name == "alice"
        await alice.release(grant.leases)
    fresh_coordinator.stop()
    assert _integrity(database) == "ok"
