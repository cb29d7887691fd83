"""SQLite queries for team knowledge: work sessions, memories, the context document, messages.

A mixin of `coordinator.store._sqlite.SqliteTx`, kept apart so each file stays about one thing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from ._protocol import ContextRow, MemoryRow, MessageRow, ThreadRow, WorkRow, ZoneRow

_WORK = "id, workspace_id, owner_id, title, plan, paths, status, progress, notes, handoff, created_at, updated_at"
_MEMORY = "id, workspace_id, agent_id, text, paths, tags, created_at, expires_at"
_THREAD = "id, workspace_id, topic, opened_by, to_kind, to_id, paths, closed, created_at"


def _work(row: Sequence[Any]) -> WorkRow:
    values = list(row)
    values[5] = json.loads(values[5])
    values[9] = json.loads(values[9]) if values[9] else None
    return WorkRow(*values)


def _memory(row: Sequence[Any]) -> MemoryRow:
    values = list(row)
    values[4], values[5] = json.loads(values[4]), json.loads(values[5])
    return MemoryRow(*values)


def _thread(row: Sequence[Any]) -> ThreadRow:
    values = list(row)
    values[6] = json.loads(values[6])
    values[7] = bool(values[7])
    return ThreadRow(*values)


class SqliteTeamQueries:
    _conn: sqlite3.Connection

    # work sessions

    def insert_work(
        self, workspace_id: int, owner_id: int, title: str, plan: str, paths: list[str], now: float
    ) -> WorkRow:
        cur = self._conn.execute(
            "INSERT INTO work (workspace_id, owner_id, title, plan, paths, status, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 'active', ?, ?)",
            (workspace_id, owner_id, title, plan, json.dumps(paths), now, now),
        )
        found = self.work_by_id(workspace_id, int(cur.lastrowid or 0))
        assert found is not None
        return found

    def work_by_id(self, workspace_id: int, work_id: int) -> WorkRow | None:
        row = self._conn.execute(
            f"SELECT {_WORK} FROM work WHERE workspace_id = ? AND id = ?", (workspace_id, work_id)
        ).fetchone()
        return _work(row) if row else None

    def works(self, workspace_id: int, statuses: Sequence[str], limit: int) -> list[WorkRow]:
        marks = ",".join("?" * len(statuses))
        rows = self._conn.execute(
            f"SELECT {_WORK} FROM work WHERE workspace_id = ? AND status IN ({marks})"
            " ORDER BY updated_at DESC LIMIT ?",
            (workspace_id, *statuses, limit),
        ).fetchall()
        return [_work(r) for r in rows]

    def update_work(self, work: WorkRow) -> None:
        self._conn.execute(
            "UPDATE work SET owner_id = ?, status = ?, progress = ?, notes = ?, handoff = ?,"
            " updated_at = ? WHERE id = ?",
            (
                work.owner_id, work.status, work.progress, work.notes,
                json.dumps(work.handoff) if work.handoff is not None else None,
                work.updated_at, work.id,
            ),
        )  # fmt: skip

    # memories

    def insert_memory(
        self,
        workspace_id: int,
        agent_id: int,
        text: str,
        paths: list[str],
        tags: list[str],
        now: float,
        expires_at: float | None,
    ) -> MemoryRow:
        cur = self._conn.execute(
            "INSERT INTO memories (workspace_id, agent_id, text, paths, tags, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (workspace_id, agent_id, text, json.dumps(paths), json.dumps(tags), now, expires_at),
        )
        return MemoryRow(
            int(cur.lastrowid or 0), workspace_id, agent_id, text, paths, tags, now, expires_at
        )

    def memory_by_id(self, workspace_id: int, memory_id: int) -> MemoryRow | None:
        row = self._conn.execute(
            f"SELECT {_MEMORY} FROM memories WHERE workspace_id = ? AND id = ? AND forgotten_at IS NULL",
            (workspace_id, memory_id),
        ).fetchone()
        return _memory(row) if row else None

    def forget_memory(self, memory_id: int, now: float) -> None:
        self._conn.execute("UPDATE memories SET forgotten_at = ? WHERE id = ?", (now, memory_id))

    def search_memories(
        self, workspace_id: int, query: str | None, now: float, limit: int
    ) -> list[MemoryRow]:
        live = "m.workspace_id = ? AND m.forgotten_at IS NULL AND (m.expires_at IS NULL OR m.expires_at > ?)"
        if query:
            rows = self._conn.execute(
                f"SELECT {', '.join('m.' + c for c in _MEMORY.split(', '))} FROM memories_fts"
                f" JOIN memories m ON m.id = memories_fts.rowid WHERE memories_fts MATCH ? AND {live}"
                " ORDER BY bm25(memories_fts) LIMIT ?",
                (query, workspace_id, now, limit),
            ).fetchall()
        else:
            rows = self._conn.execute(
                f"SELECT {', '.join('m.' + c for c in _MEMORY.split(', '))} FROM memories m"
                f" WHERE {live} ORDER BY m.id DESC LIMIT ?",
                (workspace_id, now, limit),
            ).fetchall()
        return [_memory(r) for r in rows]

    def versions_since(self, workspace_id: int, paths: Sequence[str], since: float) -> int:
        if not paths:
            return 0
        marks = ",".join("?" * len(paths))
        row = self._conn.execute(
            f"SELECT COUNT(*) FROM versions WHERE workspace_id = ? AND path IN ({marks}) AND created_at > ?",
            (workspace_id, *paths, since),
        ).fetchone()
        return int(row[0])

    def hot_paths(self, workspace_id: int, since: float, limit: int) -> list[tuple[str, int]]:
        rows = self._conn.execute(
            "SELECT path, COUNT(*) AS n FROM versions WHERE workspace_id = ? AND created_at > ?"
            " GROUP BY path ORDER BY n DESC, path LIMIT ?",
            (workspace_id, since, limit),
        ).fetchall()
        return [(str(r[0]), int(r[1])) for r in rows]

    # the context document

    def context_doc(self, workspace_id: int) -> ContextRow | None:
        row = self._conn.execute(
            "SELECT workspace_id, version, text, updated_by, updated_at FROM context_docs"
            " WHERE workspace_id = ?",
            (workspace_id,),
        ).fetchone()
        return ContextRow(*row) if row else None

    def put_context_doc(self, doc: ContextRow) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO context_docs (workspace_id, version, text, updated_by, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (doc.workspace_id, doc.version, doc.text, doc.updated_by, doc.updated_at),
        )

    # messages

    def insert_thread(
        self,
        workspace_id: int,
        topic: str,
        opened_by: int,
        to_kind: str,
        to_id: int | None,
        paths: list[str],
        now: float,
    ) -> ThreadRow:
        cur = self._conn.execute(
            "INSERT INTO threads (workspace_id, topic, opened_by, to_kind, to_id, paths, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (workspace_id, topic, opened_by, to_kind, to_id, json.dumps(paths), now),
        )
        return ThreadRow(
            int(cur.lastrowid or 0),
            workspace_id,
            topic,
            opened_by,
            to_kind,
            to_id,
            paths,
            False,
            now,
        )

    def thread_by_id(self, workspace_id: int, thread_id: int) -> ThreadRow | None:
        row = self._conn.execute(
            f"SELECT {_THREAD} FROM threads WHERE workspace_id = ? AND id = ?",
            (workspace_id, thread_id),
        ).fetchone()
        return _thread(row) if row else None

    def close_thread(self, thread_id: int) -> None:
        self._conn.execute("UPDATE threads SET closed = 1 WHERE id = ?", (thread_id,))

    def insert_message(self, thread_id: int, sender_id: int, body: str, now: float) -> MessageRow:
        cur = self._conn.execute(
            "INSERT INTO messages (thread_id, sender_id, body, created_at) VALUES (?, ?, ?, ?)",
            (thread_id, sender_id, body, now),
        )
        message_id = int(cur.lastrowid or 0)
        self.mark_read(sender_id, [message_id])
        return MessageRow(message_id, thread_id, sender_id, body, now)

    def messages_of(self, thread_id: int) -> list[MessageRow]:
        rows = self._conn.execute(
            "SELECT id, thread_id, sender_id, body, created_at FROM messages WHERE thread_id = ? ORDER BY id",
            (thread_id,),
        ).fetchall()
        return [MessageRow(*r) for r in rows]

    def threads_for(
        self, workspace_id: int, agent_id: int, work_ids: Sequence[int], limit: int
    ) -> list[ThreadRow]:
        """Threads addressed to the team, to this agent, to its work, or opened by it."""
        marks = ",".join("?" * len(work_ids)) or "NULL"
        rows = self._conn.execute(
            f"SELECT {_THREAD} FROM threads WHERE workspace_id = ? AND (to_kind = 'team'"
            " OR (to_kind = 'agent' AND to_id = ?) OR opened_by = ?"
            f" OR (to_kind = 'work' AND to_id IN ({marks}))) ORDER BY id DESC LIMIT ?",
            (workspace_id, agent_id, agent_id, *work_ids, limit),
        ).fetchall()
        return [_thread(r) for r in rows]

    def read_message_ids(self, agent_id: int, message_ids: Sequence[int]) -> set[int]:
        if not message_ids:
            return set()
        marks = ",".join("?" * len(message_ids))
        rows = self._conn.execute(
            f"SELECT message_id FROM message_reads WHERE agent_id = ? AND message_id IN ({marks})",
            (agent_id, *message_ids),
        ).fetchall()
        return {int(r[0]) for r in rows}

    def mark_read(self, agent_id: int, message_ids: Sequence[int]) -> None:
        self._conn.executemany(
            "INSERT OR IGNORE INTO message_reads (agent_id, message_id) VALUES (?, ?)",
            [(agent_id, m) for m in message_ids],
        )

    def agent_by_name(self, workspace_id: int, name: str) -> int | None:
        row = self._conn.execute(
            "SELECT id FROM agents WHERE workspace_id = ? AND name = ? ORDER BY left_at IS NOT NULL, id DESC LIMIT 1",
            (workspace_id, name),
        ).fetchone()
        return int(row[0]) if row else None

    # protected zones

    def insert_zone(
        self, workspace_id: int, glob: str, level: str, reason: str, by: int, now: float
    ) -> ZoneRow:
        cur = self._conn.execute(
            "INSERT INTO zones (workspace_id, glob, level, reason, created_by, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (workspace_id, glob, level, reason, by, now),
        )
        return ZoneRow(int(cur.lastrowid or 0), workspace_id, glob, level, reason, now)

    def zones_of(self, workspace_id: int) -> list[ZoneRow]:
        rows = self._conn.execute(
            "SELECT id, workspace_id, glob, level, reason, created_at FROM zones"
            " WHERE workspace_id = ? AND removed_at IS NULL ORDER BY id",
            (workspace_id,),
        ).fetchall()
        return [ZoneRow(*r) for r in rows]

    def remove_zone(self, workspace_id: int, zone_id: int, now: float) -> bool:
        cur = self._conn.execute(
            "UPDATE zones SET removed_at = ? WHERE workspace_id = ? AND id = ? AND removed_at IS NULL",
            (now, workspace_id, zone_id),
        )
        return cur.rowcount > 0

    def insert_allowance(
        self, workspace_id: int, path: str, agent_name: str, by: int, now: float
    ) -> None:
        self._conn.execute(
            "INSERT INTO zone_allowances (workspace_id, path, agent_name, granted_by, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (workspace_id, path, agent_name, by, now),
        )

    def allowances_of(self, workspace_id: int, agent_name: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT path FROM zone_allowances WHERE workspace_id = ? AND agent_name = ?",
            (workspace_id, agent_name),
        ).fetchall()
        return [str(r[0]) for r in rows]
