"""The store interface: what the coordinator needs from a database, and nothing more.

The coordinator runs each state change as one function over a `Tx`, handed to `Store.run`,
which executes it in a worker thread inside one serialisable transaction. SQLite implements
it today (`coordinator.store._sqlite`); a PostgreSQL store will implement the same two
protocols, so the rules of leasing are written once. Nothing here is specific to SQLite.
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
    role: str = "admin"  # its member's role (agents of a machine-local coordinator: admin)
    member_id: int | None = None  # the member it registered as; None on a local coordinator


@dataclass(frozen=True)
class MemberRow:
    """A standing in a workspace, held by whoever has its credential (a person's machine)."""

    id: int
    workspace_id: int
    name: str
    role: str
    invited_by: int | None
    created_at: float
    revoked_at: float | None


@dataclass(frozen=True)
class InvitationRow:
    id: int
    workspace_id: int
    role: str
    created_by: int | None
    created_at: float
    expires_at: float
    uses_left: int
    revoked_at: float | None


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
    # The branch whose agents this lease excludes; "": every agent of the workspace.
    scope: str = ""


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
class WorkRow:
    id: int
    workspace_id: int
    owner_id: int
    title: str
    plan: str
    paths: list[str]
    status: str
    progress: str
    notes: str
    handoff: dict[str, Any] | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class MemoryRow:
    id: int
    workspace_id: int
    agent_id: int
    text: str
    paths: list[str]
    tags: list[str]
    created_at: float
    expires_at: float | None


@dataclass(frozen=True)
class ContextRow:
    workspace_id: int
    version: int
    text: str
    updated_by: int | None
    updated_at: float


@dataclass(frozen=True)
class ThreadRow:
    id: int
    workspace_id: int
    topic: str
    opened_by: int
    to_kind: str
    to_id: int | None
    paths: list[str]
    closed: bool
    created_at: float


@dataclass(frozen=True)
class MessageRow:
    id: int
    thread_id: int
    sender_id: int
    body: str
    created_at: float


@dataclass(frozen=True)
class ZoneRow:
    id: int
    workspace_id: int
    glob: str
    level: str
    reason: str
    created_at: float


@dataclass(frozen=True)
class AuditQuery:
    workspace_id: int
    agent_id: int | None = None
    path: str | None = None
    since: float | None = None
    until: float | None = None
    after_id: int | None = None
    limit: int = 1000


class TeamTx(Protocol):
    """Team knowledge in one transaction: work sessions, memories, context, messages."""

    def insert_work(
        self, workspace_id: int, owner_id: int, title: str, plan: str, paths: list[str], now: float
    ) -> WorkRow: ...
    def work_by_id(self, workspace_id: int, work_id: int) -> WorkRow | None: ...
    def works(self, workspace_id: int, statuses: Sequence[str], limit: int) -> list[WorkRow]: ...
    def update_work(self, work: WorkRow) -> None: ...
    def insert_memory(
        self,
        workspace_id: int,
        agent_id: int,
        text: str,
        paths: list[str],
        tags: list[str],
        now: float,
        expires_at: float | None,
    ) -> MemoryRow: ...
    def memory_by_id(self, workspace_id: int, memory_id: int) -> MemoryRow | None: ...
    def forget_memory(self, memory_id: int, now: float) -> None: ...
    def search_memories(
        self, workspace_id: int, query: str | None, now: float, limit: int
    ) -> list[MemoryRow]: ...
    def versions_since(self, workspace_id: int, paths: Sequence[str], since: float) -> int: ...
    def hot_paths(self, workspace_id: int, since: float, limit: int) -> list[tuple[str, int]]: ...
    def context_doc(self, workspace_id: int) -> ContextRow | None: ...
    def put_context_doc(self, doc: ContextRow) -> None: ...
    def insert_thread(
        self,
        workspace_id: int,
        topic: str,
        opened_by: int,
        to_kind: str,
        to_id: int | None,
        paths: list[str],
        now: float,
    ) -> ThreadRow: ...
    def thread_by_id(self, workspace_id: int, thread_id: int) -> ThreadRow | None: ...
    def close_thread(self, thread_id: int) -> None: ...
    def insert_message(
        self, thread_id: int, sender_id: int, body: str, now: float
    ) -> MessageRow: ...
    def messages_of(self, thread_id: int) -> list[MessageRow]: ...
    def threads_for(
        self, workspace_id: int, agent_id: int, work_ids: Sequence[int], limit: int
    ) -> list[ThreadRow]: ...
    def read_message_ids(self, agent_id: int, message_ids: Sequence[int]) -> set[int]: ...
    def mark_read(self, agent_id: int, message_ids: Sequence[int]) -> None: ...
    def agent_by_name(self, workspace_id: int, name: str) -> int | None: ...
    def insert_zone(
        self, workspace_id: int, glob: str, level: str, reason: str, by: int, now: float
    ) -> ZoneRow: ...
    def zones_of(self, workspace_id: int) -> list[ZoneRow]: ...
    def remove_zone(self, workspace_id: int, zone_id: int, now: float) -> bool: ...
    def insert_allowance(
        self, workspace_id: int, path: str, agent_name: str, by: int, now: float
    ) -> None: ...
    def allowances_of(self, workspace_id: int, agent_name: str) -> list[str]: ...


class AccessTx(Protocol):
    """Who may join: members with hashed credentials, and invitations with hashed secrets."""

    def insert_member(
        self,
        workspace_id: int,
        name: str,
        role: str,
        credential_hash: str,
        invited_by: int | None,
        now: float,
    ) -> MemberRow: ...
    def member_by_credential_hash(self, credential_hash: str) -> MemberRow | None: ...
    def member_by_id(self, member_id: int) -> MemberRow | None: ...
    def members_of(self, workspace_id: int) -> list[MemberRow]: ...
    def revoke_member(self, member_id: int, now: float) -> None: ...
    def agents_of_member(self, member_id: int) -> list[AgentRow]: ...
    def agents_of_workspace(self, workspace_id: int) -> list[AgentRow]: ...
    def insert_invitation(
        self,
        workspace_id: int,
        secret_hash: str,
        role: str,
        created_by: int | None,
        now: float,
        expires_at: float,
        uses: int,
    ) -> InvitationRow: ...
    def invitation_by_secret_hash(self, secret_hash: str) -> InvitationRow | None: ...
    def use_invitation(self, invitation_id: int) -> None: ...


class Tx(TeamTx, AccessTx, Protocol):
    """One transaction. Methods are synchronous: the whole function runs in a worker thread."""

    # workspaces and agents
    def workspace_by_name(self, name: str) -> WorkspaceRow | None: ...
    def workspace_by_id(self, workspace_id: int) -> WorkspaceRow: ...
    def insert_workspace(self, name: str, now: float) -> WorkspaceRow: ...
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
    ) -> AgentRow: ...
    def agent_by_token_hash(self, token_hash: str) -> AgentRow | None: ...
    def agents_by_ids(self, agent_ids: Iterable[int]) -> dict[int, AgentRow]: ...
    def mark_agent_left(self, agent_id: int, now: float) -> None: ...

    # leases
    def leases_for_paths(self, workspace_id: int, paths: Sequence[str]) -> list[LeaseRow]: ...
    def leases_under(self, workspace_id: int, prefix: str) -> list[LeaseRow]:
        """Rows whose path starts with ``prefix`` (a folder key ending in '/')."""
        ...

    def leases_of_agent(self, agent_id: int) -> list[LeaseRow]: ...
    def count_live_leases_of_agent(self, agent_id: int, now: float) -> int: ...
    def leases_of_workspace(self, workspace_id: int) -> list[LeaseRow]: ...
    def leases_expired_by(self, now: float) -> list[LeaseRow]: ...
    def next_expiry(self) -> float | None: ...
    def upsert_lease(self, lease: LeaseRow) -> None: ...
    def delete_lease(self, lease: LeaseRow) -> None: ...
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
    def latest_versions_elsewhere(
        self, workspace_id: int, paths: Sequence[str], branch: str
    ) -> dict[str, list[VersionRow]]:
        """Per path, the latest version on each branch but ``branch`` (newest first)."""
        ...

    def version_history(
        self, workspace_id: int, path: str, branch: str, limit: int
    ) -> list[VersionRow]: ...
    def has_versions_under(self, workspace_id: int, prefix: str, branch: str) -> bool:
        """Was any version ever recorded on ``branch`` for a path starting with ``prefix``?"""
        ...

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
