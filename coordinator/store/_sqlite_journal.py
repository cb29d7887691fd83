"""SQLite queries for the journal: the event stream and the audit log.

A mixin of `coordinator.store._sqlite.SqliteTx`, kept apart so each file stays about one thing.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ._protocol import AuditQuery, AuditRow, EventRow


class SqliteJournalQueries:
    _conn: sqlite3.Connection

    def append_event(
        self,
        workspace_id: int,
        type: str,
        now: float,
        agent_id: int | None,
        path: str | None,
        data: dict[str, Any],
    ) -> int:
        cur = self._conn.execute(
            "INSERT INTO events (workspace_id, type, at, agent_id, path, data) VALUES (?, ?, ?, ?, ?, ?)",
            (workspace_id, type, now, agent_id, path, json.dumps(data)),
        )
        return int(cur.lastrowid or 0)

    def last_event_id(self, workspace_id: int) -> int:
        row = self._conn.execute(
            "SELECT MAX(id) FROM events WHERE workspace_id = ?", (workspace_id,)
        ).fetchone()
        return int(row[0] or 0)

    def events_after(self, workspace_id: int, after_id: int, limit: int) -> list[EventRow]:
        rows = self._conn.execute(
            "SELECT id, workspace_id, type, at, agent_id, path, data FROM events"
            " WHERE workspace_id = ? AND id > ? ORDER BY id LIMIT ?",
            (workspace_id, after_id, limit),
        ).fetchall()
        return [
            EventRow(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]))
            for row in rows
        ]

    def append_audit(
        self,
        workspace_id: int,
        now: float,
        agent_id: int | None,
        action: str,
        path: str | None,
        detail: dict[str, Any],
    ) -> int:
        cur = self._conn.execute(
            "INSERT INTO audit (workspace_id, at, agent_id, action, path, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (workspace_id, now, agent_id, action, path, json.dumps(detail)),
        )
        return int(cur.lastrowid or 0)

    def query_audit(self, query: AuditQuery) -> list[AuditRow]:
        clauses = ["workspace_id = ?"]
        params: list[Any] = [query.workspace_id]
        for column, op, value in (
            ("agent_id", "=", query.agent_id),
            ("path", "=", query.path),
            ("at", ">=", query.since),
            ("at", "<=", query.until),
            ("id", ">", query.after_id),
        ):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        params.append(query.limit)
        rows = self._conn.execute(
            "SELECT id, workspace_id, at, agent_id, action, path, detail FROM audit"
            f" WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?",
            params,
        ).fetchall()
        return [
            AuditRow(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]))
            for row in rows
        ]
