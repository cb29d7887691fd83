"""Turning store rows into wire models, and recording every change in audit and events.

Every state change appends its audit entry, and where other agents care its event, inside the
same transaction as the change itself, so the log never disagrees with the state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from leasefs.wire import AgentInfo, EventType, Lease, Version

from .store import AgentRow, LeaseRow, Tx, VersionRow


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def agent_info(row: AgentRow) -> AgentInfo:
    return AgentInfo(
        id=row.id,
        name=row.name,
        host=row.host,
        tool=row.tool,
        joined_at=row.joined_at,
        left_at=row.left_at,
        role=row.role,
    )


def lease_model(row: LeaseRow, agents: dict[int, AgentRow]) -> Lease:
    return Lease(
        path=row.path,
        holder=agent_info(agents[row.agent_id]),
        token=row.token,
        acquired_at=row.acquired_at,
        expires_at=row.expires_at,
        ttl_s=row.ttl_s,
        work=row.work,
        branch=row.scope or None,
    )


def leases_of(tx: Tx, rows: Sequence[LeaseRow]) -> list[Lease]:
    agents = tx.agents_by_ids(r.agent_id for r in rows)
    return [lease_model(r, agents) for r in rows]


def version_model(row: VersionRow, agents: dict[int, AgentRow]) -> Version:
    return Version(
        id=row.id,
        path=row.path,
        branch=row.branch,
        hash=row.hash,
        deleted=row.deleted,
        base_hash=row.base_hash,
        size=row.size,
        mode=row.mode,
        token=row.token,
        author=agent_info(agents[row.agent_id]),
        created_at=row.created_at,
    )


def record(
    tx: Tx,
    workspace_id: int,
    now: float,
    agent_id: int | None,
    kind: str,
    path: str | None,
    data: dict[str, Any],
    *,
    publish: bool = True,
) -> None:
    """Append one audit entry and, if others should hear of it, the same as an event."""
    tx.append_audit(workspace_id, now, agent_id, kind, path, data)
    if publish:
        tx.append_event(workspace_id, kind, now, agent_id, path, data)


def lease_data(row: LeaseRow, **extra: Any) -> dict[str, Any]:
    scoped = {"branch": row.scope} if row.scope else {}
    return {"token": row.token, "expires_at": row.expires_at, "work": row.work, **scoped, **extra}


def expire(tx: Tx, rows: Iterable[LeaseRow], now: float) -> set[int]:
    workspaces = set()
    for row in rows:
        tx.delete_lease(row)
        record(
            tx,
            row.workspace_id,
            now,
            row.agent_id,
            EventType.LEASE_EXPIRED,
            row.path,
            lease_data(row),
        )
        workspaces.add(row.workspace_id)
    return workspaces
