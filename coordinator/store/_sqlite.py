"""The embedded store: one SQLite file in WAL mode, one writer, numbered migrations.

Writes go through one connection under a thread lock with ``BEGIN IMMEDIATE``; reads use a
second connection, so the event stream and audit queries never wait behind a writer. sqlite3
errors are converted here, once, into `StoreFailure` with a sentence a person can act on.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import trio

from .._errors import StoreFailure
from ._protocol import (
    AgentRow,
    LeaseRow,
    VersionRow,
    WorkspaceRow,
)
from ._sqlite_access import AGENT_COLUMNS, SqliteAccessQueries
from ._sqlite_checkpoint import BACKSTOP_PAGES, Checkpointer
from ._sqlite_journal import SqliteJournalQueries
from ._sqlite_team import SqliteTeamQueries

T = TypeVar("T")

_LEASE_COLUMNS = "workspace_id, path, agent_id, token, acquired_at, expires_at, ttl_s, work, scope"
_ELSEWHERE_BRANCHES = 5  # other branches named per path in a grant, at most
_VERSION_COLUMNS = "id, workspace_id, path, branch, hash, deleted, base_hash, size, mode, token, agent_id, created_at"


def _migrations() -> list[tuple[int, str, str]]:
    """The numbered SQL files shipped in ``coordinator/store/migrations``, in order."""
    found = []
    for entry in resources.files("coordinator.store").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            number = int(entry.name.split("_", 1)[0])
            found.append((number, entry.name, entry.read_text()))
    return sorted(found)


def _lease(row: sqlite3.Row) -> LeaseRow:
    return LeaseRow(*row)


def _version(row: sqlite3.Row) -> VersionRow:
    values = list(row)
    values[5] = bool(values[5])
    return VersionRow(*values)


class SqliteTx(SqliteJournalQueries, SqliteTeamQueries, SqliteAccessQueries):
    """The `coordinator.store.Tx` protocol over one sqlite3 connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql, params).fetchone()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._conn.execute(sql, params).fetchall()

    # workspaces and agents

    def workspace_by_name(self, name: str) -> WorkspaceRow | None:
        row = self._one("SELECT id, name, created_at FROM workspaces WHERE name = ?", (name,))
        return WorkspaceRow(*row) if row else None

    def workspace_by_id(self, workspace_id: int) -> WorkspaceRow:
        row = self._one("SELECT id, name, created_at FROM workspaces WHERE id = ?", (workspace_id,))
        return WorkspaceRow(*row)

    def insert_workspace(self, name: str, now: float) -> WorkspaceRow:
        cur = self._conn.execute(
            "INSERT INTO workspaces (name, created_at) VALUES (?, ?)", (name, now)
        )
        return WorkspaceRow(int(cur.lastrowid or 0), name, now)

    def insert_agent(
        self,
        workspace_id: int,
        name: str,
        host: str,
        tool: str,
        token_hash: str,
        now: float,
        role: str = "admin",
        member_id: int | None = None,
    ) -> AgentRow:
        cur = self._conn.execute(
            "INSERT INTO agents (workspace_id, name, host, tool, token_hash, joined_at, role,"
            " member_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (workspace_id, name, host, tool, token_hash, now, role, member_id),
        )
        return AgentRow(
            int(cur.lastrowid or 0), workspace_id, name, host, tool, now, None, role, member_id
        )

    def agent_by_token_hash(self, token_hash: str) -> AgentRow | None:
        row = self._one(f"SELECT {AGENT_COLUMNS} FROM agents WHERE token_hash = ?", (token_hash,))
        return AgentRow(*row) if row else None

    def agents_by_ids(self, agent_ids: Iterable[int]) -> dict[int, AgentRow]:
        ids = sorted(set(agent_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._all(f"SELECT {AGENT_COLUMNS} FROM agents WHERE id IN ({marks})", ids)
        return {row[0]: AgentRow(*row) for row in rows}

    def mark_agent_left(self, agent_id: int, now: float) -> None:
        self._conn.execute("UPDATE agents SET left_at = ? WHERE id = ?", (now, agent_id))

    # leases

    def leases_for_paths(self, workspace_id: int, paths: Sequence[str]) -> list[LeaseRow]:
        rows: list[LeaseRow] = []
        for start in range(0, len(paths), 500):
            chunk = list(paths[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows += map(
                _lease,
                self._all(
                    f"SELECT {_LEASE_COLUMNS} FROM leases WHERE workspace_id = ? AND path IN ({marks})",
                    [workspace_id, *chunk],
                ),
            )
        return rows

    def leases_under(self, workspace_id: int, prefix: str) -> list[LeaseRow]:
        low, high = _prefix_range(prefix)
        return list(
            map(
                _lease,
                self._all(
                    f"SELECT {_LEASE_COLUMNS} FROM leases"
                    " WHERE workspace_id = ? AND path >= ? AND path < ?",
                    (workspace_id, low, high),
                ),
            )
        )

    def leases_of_agent(self, agent_id: int) -> list[LeaseRow]:
        return list(
            map(
                _lease,
                self._all(f"SELECT {_LEASE_COLUMNS} FROM leases WHERE agent_id = ?", (agent_id,)),
            )
        )

    def count_live_leases_of_agent(self, agent_id: int, now: float) -> int:
        sql = "SELECT COUNT(*) FROM leases WHERE agent_id = ? AND expires_at > ?"
        count: int = self._conn.execute(sql, (agent_id, now)).fetchone()[0]
        return count

    def leases_of_workspace(self, workspace_id: int) -> list[LeaseRow]:
        sql = f"SELECT {_LEASE_COLUMNS} FROM leases WHERE workspace_id = ? ORDER BY path"
        return list(map(_lease, self._all(sql, (workspace_id,))))

    def leases_expired_by(self, now: float) -> list[LeaseRow]:
        sql = f"SELECT {_LEASE_COLUMNS} FROM leases WHERE expires_at <= ? ORDER BY expires_at"
        return list(map(_lease, self._all(sql, (now,))))

    def next_expiry(self) -> float | None:
        row = self._one("SELECT MIN(expires_at) FROM leases")
        return None if row is None or row[0] is None else float(row[0])

    def upsert_lease(self, lease: LeaseRow) -> None:
        self._conn.execute(
            f"INSERT OR REPLACE INTO leases ({_LEASE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                lease.workspace_id,
                lease.path,
                lease.agent_id,
                lease.token,
                lease.acquired_at,
                lease.expires_at,
                lease.ttl_s,
                lease.work,
                lease.scope,
            ),
        )

    def delete_lease(self, lease: LeaseRow) -> None:
        self._conn.execute(
            "DELETE FROM leases WHERE workspace_id = ? AND path = ? AND scope = ?",
            (lease.workspace_id, lease.path, lease.scope),
        )

    def next_fencing_token(self, workspace_id: int) -> int:
        row = self._one(
            "UPDATE workspaces SET fencing_counter = fencing_counter + 1 WHERE id = ?"
            " RETURNING fencing_counter",
            (workspace_id,),
        )
        return int(row[0])

    # blobs and versions

    def insert_blob(self, workspace_id: int, digest: str, size: int, now: float) -> None:
        self._conn.execute(
            "INSERT OR IGNORE INTO blobs (workspace_id, hash, size, created_at) VALUES (?, ?, ?, ?)",
            (workspace_id, digest, size, now),
        )

    def blob_size(self, workspace_id: int, digest: str) -> int | None:
        row = self._one(
            "SELECT size FROM blobs WHERE workspace_id = ? AND hash = ?", (workspace_id, digest)
        )
        return None if row is None else int(row[0])

    def insert_version(
        self,
        *,
        workspace_id: int,
        path: str,
        branch: str,
        hash: str | None,
        base_hash: str | None,
        size: int | None,
        mode: int | None,
        token: int,
        agent_id: int,
        now: float,
    ) -> VersionRow:
        cur = self._conn.execute(
            "INSERT INTO versions (workspace_id, path, branch, hash, deleted, base_hash, size, mode,"
            " token, agent_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                workspace_id,
                path,
                branch,
                hash,
                hash is None,
                base_hash,
                size,
                mode,
                token,
                agent_id,
                now,
            ),
        )
        return VersionRow(
            int(cur.lastrowid or 0),
            workspace_id,
            path,
            branch,
            hash,
            hash is None,
            base_hash,
            size,
            mode,
            token,
            agent_id,
            now,
        )

    def latest_versions_elsewhere(
        self, workspace_id: int, paths: Sequence[str], branch: str
    ) -> dict[str, list[VersionRow]]:
        found: dict[str, list[VersionRow]] = {}
        for path in paths:
            rows = self._all(
                f"SELECT {_VERSION_COLUMNS} FROM versions WHERE id IN (SELECT MAX(id) FROM "
                "versions WHERE workspace_id = ? AND path = ? AND branch != ? GROUP BY branch)"
                f" ORDER BY id DESC LIMIT {_ELSEWHERE_BRANCHES}",
                (workspace_id, path, branch),
            )
            if rows:
                found[path] = [_version(row) for row in rows]
        return found

    def latest_versions(
        self, workspace_id: int, paths: Sequence[str], branch: str
    ) -> dict[str, VersionRow]:
        found: dict[str, VersionRow] = {}
        for path in paths:
            row = self._one(
                f"SELECT {_VERSION_COLUMNS} FROM versions WHERE workspace_id = ? AND path = ?"
                " AND branch = ? ORDER BY id DESC LIMIT 1",
                (workspace_id, path, branch),
            )
            if row:
                found[path] = _version(row)
        return found

    def version_history(
        self, workspace_id: int, path: str, branch: str, limit: int
    ) -> list[VersionRow]:
        rows = self._all(
            f"SELECT {_VERSION_COLUMNS} FROM versions WHERE workspace_id = ? AND path = ?"
            " AND branch = ? ORDER BY id DESC LIMIT ?",
            (workspace_id, path, branch, limit),
        )
        return list(map(_version, rows))

    def has_versions_under(self, workspace_id: int, prefix: str, branch: str) -> bool:
        low, high = _prefix_range(prefix)
        row = self._one(
            "SELECT 1 FROM versions WHERE workspace_id = ? AND path >= ? AND path < ?"
            " AND branch = ? LIMIT 1",
            (workspace_id, low, high, branch),
        )
        return row is not None


def _prefix_range(prefix: str) -> tuple[str, str]:
    """The text range holding exactly the strings starting with ``prefix`` (which ends in
    '/', so its successor '0' bounds it): a range scan of the primary key, unlike LIKE."""
    assert prefix.endswith("/"), prefix
    return prefix, prefix[:-1] + "0"


class SqliteStore:
    """The `coordinator.store.Store` protocol on one SQLite database file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        with _converted_errors():
            self._writer = self._connect()
            self._migrate()
            self._writer.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
            self._reader = self._connect()
        self._limiter = trio.CapacityLimiter(1)
        self._checkpointer = Checkpointer(path)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=5.0
        )
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode loses nothing when the process dies; only an OS crash could.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _migrate(self) -> None:
        conn = self._writer
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        applied = {row[0] for row in conn.execute("SELECT number FROM schema_migrations")}
        for number, name, sql in _migrations():
            if number in applied:
                continue
            # One script, one transaction: a migration is applied whole or not at all.
            # (executescript, because triggers carry semicolons of their own.)
            record = (
                "INSERT INTO schema_migrations (number, name, applied_at)"
                f" VALUES ({number}, '{name}', {time.time()!r});"
            )
            try:
                conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\n;{record}\nCOMMIT;")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _run_sync(self, fn: Callable[[SqliteTx], T]) -> T:
        with self._write_lock, _converted_errors():
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(SqliteTx(conn))
                conn.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back already (a full disk does); a COMMIT that
                # failed leaves the transaction open, and it must not outlive the request.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

    def _read_sync(self, fn: Callable[[SqliteTx], T]) -> T:
        with self._read_lock, _converted_errors():
            conn = self._reader
            conn.execute("BEGIN")
            try:
                return fn(SqliteTx(conn))
            finally:
                conn.execute("COMMIT")

    async def run(self, fn: Callable[[SqliteTx], T]) -> T:
        return await trio.to_thread.run_sync(self._run_sync, fn, limiter=self._limiter)

    async def read(self, fn: Callable[[SqliteTx], T]) -> T:
        return await trio.to_thread.run_sync(self._read_sync, fn)

    def close(self) -> None:
        self._checkpointer.close()
        with self._write_lock, self._read_lock:
            self._reader.close()
            self._writer.close()


@contextmanager
def _converted_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            message = "the coordinator's database is locked by another process; try again shortly"
        elif "disk" in text or "full" in text:
            message = "the coordinator's disk is full; free space and try again"
        else:
            message = f"the coordinator's database failed: {text}"
        raise StoreFailure(message) from exc
    except sqlite3.DatabaseError as exc:
        raise StoreFailure(f"the coordinator's database failed: {exc}") from exc
