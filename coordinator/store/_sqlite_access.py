"""SQLite queries for access control: members and their credentials, invitations.

A mixin of `coordinator.store._sqlite.SqliteTx`, kept apart so each file stays about one thing.
Credentials and secrets arrive here already hashed; nothing here ever sees one in the clear.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._protocol import AgentRow, InvitationRow, MemberRow

_MEMBER = "id, workspace_id, name, role, invited_by, created_at, revoked_at"
_INVITATION = "id, workspace_id, role, created_by, created_at, expires_at, uses_left, revoked_at"
AGENT_COLUMNS = "id, workspace_id, name, host, tool, joined_at, left_at, role, member_id"
"""The agents' columns in `AgentRow`'s order (`SqliteTx` reads agents with them too)."""


class SqliteAccessQueries:
    _conn: sqlite3.Connection

    if TYPE_CHECKING:  # `SqliteTx`'s own, which this is mixed into

        def _one(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
        def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    def insert_member(
        self,
        workspace_id: int,
        name: str,
        role: str,
        credential_hash: str,
        invited_by: int | None,
        now: float,
    ) -> MemberRow:
        cur = self._conn.execute(
            "INSERT INTO members (workspace_id, name, role, credential_hash, invited_by,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (workspace_id, name, role, credential_hash, invited_by, now),
        )
        return MemberRow(int(cur.lastrowid or 0), workspace_id, name, role, invited_by, now, None)

    def member_by_credential_hash(self, credential_hash: str) -> MemberRow | None:
        row = self._one(
            f"SELECT {_MEMBER} FROM members WHERE credential_hash = ?", (credential_hash,)
        )
        return MemberRow(*row) if row else None

    def member_by_id(self, member_id: int) -> MemberRow | None:
        row = self._one(f"SELECT {_MEMBER} FROM members WHERE id = ?", (member_id,))
        return MemberRow(*row) if row else None

    def members_of(self, workspace_id: int) -> list[MemberRow]:
        rows = self._all(
            f"SELECT {_MEMBER} FROM members WHERE workspace_id = ? ORDER BY id", (workspace_id,)
        )
        return [MemberRow(*row) for row in rows]

    def revoke_member(self, member_id: int, now: float) -> None:
        self._conn.execute("UPDATE members SET revoked_at = ? WHERE id = ?", (now, member_id))

    def agents_of_member(self, member_id: int) -> list[AgentRow]:
        rows = self._all(f"SELECT {AGENT_COLUMNS} FROM agents WHERE member_id = ?", (member_id,))
        return [AgentRow(*row) for row in rows]

    def agents_of_workspace(self, workspace_id: int) -> list[AgentRow]:
        rows = self._all(
            f"SELECT {AGENT_COLUMNS} FROM agents WHERE workspace_id = ? ORDER BY id",
            (workspace_id,),
        )
        return [AgentRow(*row) for row in rows]

    def insert_invitation(
        self,
        workspace_id: int,
        secret_hash: str,
        role: str,
        created_by: int | None,
        now: float,
        expires_at: float,
        uses: int,
    ) -> InvitationRow:
        cur = self._conn.execute(
            "INSERT INTO invitations (workspace_id, secret_hash, role, created_by, created_at,"
            " expires_at, uses_left) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (workspace_id, secret_hash, role, created_by, now, expires_at, uses),
        )
        return InvitationRow(
            int(cur.lastrowid or 0), workspace_id, role, created_by, now, expires_at, uses, None
        )

    def invitation_by_secret_hash(self, secret_hash: str) -> InvitationRow | None:
        row = self._one(
            f"SELECT {_INVITATION} FROM invitations WHERE secret_hash = ?", (secret_hash,)
        )
        return InvitationRow(*row) if row else None

    def use_invitation(self, invitation_id: int) -> None:
        self._conn.execute(
            "UPDATE invitations SET uses_left = uses_left - 1 WHERE id = ?", (invitation_id,)
        )
