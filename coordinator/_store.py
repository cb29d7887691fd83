"""The store interface: what lease logic needs from a database, and nothing more.

Lease logic (`coordinator._service`) runs each state change as one function over a `Tx`,
handed to `Store.run`, which executes it in a worker thread inside one serialisable
transaction. SQLite implements it today (`coordinator._sqlite`); a PostgreSQL store will
implement the same two protocols, so the rules of leasing are written once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class WorkspaceRow:
    id: int
    name: str
    created_at: float


@dataclass(frozen=True)
class AgentRow:
    id: int
    workspace_id: int
    name: str
    host: str
    tool: str
    joined_at: float
    left_at: float | None


@dataclass(frozen=True)
class LeaseRow:
    workspace_id: int
    path: str
    agent_id: int
    token: int
    acquired_at: float
    expires_at: float
    ttl_s: float
    work: str | None


@dataclass(frozen=True)
class VersionRow:
    id: int
    workspace_id: int
    path: str
    branch: str
    hash: str | None
    deleted: bool
    base_hash: str | None
    size: int | None
    mode: int | None
    token: int
    agent_id: int
    created_at: float


@dataclass(frozen=True)
class EventRow:
    id: int
    workspace_id: int
    type: str
    at: float
    agent_id: int | None
    path: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class AuditRow:
    id: int
    workspace_id: int
    at: float
    agent_id: int | None
    action: str
    path: str | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class AuditQuery:
    workspace_id: int
    agent_id: int | None = None
    path: str | None = None
    since: float | None = None
    until: float | None = None
    after_id: int | None = None
    limit: int = 1000


class Tx(Protocol):
    """One transaction. Methods are synchronous: the whole function runs in a worker thread."""

    # workspaces and agents
    def workspace_by_name(self, name: str) -> WorkspaceRow | None: ...
    def workspace_by_id(self, workspace_id: int) -> WorkspaceRow: ...
    def insert_workspace(self, name: str, now: float) -> WorkspaceRow: ...
    def insert_agent(
        self, workspace_id: int, name: str, host: str, tool: str, token_hash: str, now: float
    ) -> AgentRow: ...
    def agent_by_token_hash(self, token_hash: str) -> AgentRow | None: ...
    def agents_by_ids(self, agent_ids: Iterable[int]) -> dict[int, AgentRow]: ...
    def mark_agent_left(self, agent_id: int, now: float) -> None: ...

    # leases
    def leases_for_paths(self, workspace_id: int, paths: Sequence[str]) -> list[LeaseRow]: ...
    def leases_of_agent(self, agent_id: int) -> list[LeaseRow]: ...
    def leases_of_workspace(self, workspace_id: int) -> list[LeaseRow]: ...
    def leases_expired_by(self, now: float) -> list[LeaseRow]: ...
    def next_expiry(self) -> float | None: ...
    def upsert_lease(self, lease: LeaseRow) -> None: ...
    def delete_lease(self, workspace_id: int, path: str) -> None: ...
    def next_fencing_token(self, workspace_id: int) -> int: ...

    # blobs and versions
    def insert_blob(self, workspace_id: int, digest: str, size: int, now: float) -> None: ...
    def blob_size(self, workspace_id: int, digest: str) -> int | None: ...
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
    ) -> VersionRow: ...
    def latest_versions(
        self, workspace_id: int, paths: Sequence[str], branch: str
    ) -> dict[str, VersionRow]: ...
    def version_history(
        self, workspace_id: int, path: str, branch: str, limit: int
    ) -> list[VersionRow]: ...

    # events and audit
    def append_event(
        self,
        workspace_id: int,
        type: str,
        now: float,
        agent_id: int | None,
        path: str | None,
        data: dict[str, Any],
    ) -> int: ...
    def events_after(self, workspace_id: int, after_id: int, limit: int) -> list[EventRow]: ...
    def last_event_id(self, workspace_id: int) -> int: ...
    def append_audit(
        self,
        workspace_id: int,
        now: float,
        agent_id: int | None,
        action: str,
        path: str | None,
        detail: dict[str, Any],
    ) -> int: ...
    def query_audit(self, query: AuditQuery) -> list[AuditRow]: ...


class Store(Protocol):
    async def run(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in one transaction on a worker thread; commit if it returns."""
        ...

    async def read(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` for reading only (may see a snapshot, never a half-done change)."""
        ...

    def close(self) -> None: ...
