"""Checkpointing the SQLite write-ahead log in a thread of its own, off the writers' path.

SQLite's automatic checkpoint runs inside whichever commit crosses the threshold: that commit
copies about a thousand pages into the database and fsyncs it, a few milliseconds, while every
lease change waits behind it. Here a thread with its own connection runs a PASSIVE checkpoint
(it never blocks readers or the writer) every `INTERVAL_S`; the writer's automatic checkpoint
stays only as a backstop at `BACKSTOP_PAGES`, should this thread fall behind.

Durability is unchanged: a commit is in the WAL file once acknowledged, which survives the
process being killed (synchronous = NORMAL); checkpoints only move it into the main file.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("leasefs.coordinator")

INTERVAL_S = 0.5
BACKSTOP_PAGES = 20_000  # about 80 MB of WAL


class Checkpointer:
    """A daemon thread checkpointing one database file until `close`."""

    def __init__(self, path: Path, interval_s: float = INTERVAL_S) -> None:
        self._path = path
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="leasefs-wal-checkpoint", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, timeout=5.0)
        try:
            while not self._stop.wait(self._interval_s):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # the backstop still bounds the WAL; try later
                    log.warning("WAL checkpoint failed: %s", exc)
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
