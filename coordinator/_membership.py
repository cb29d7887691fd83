"""Who is in the team: workspaces, agents registering with a token, and tokens checked.

A token is shown once, at registration; the store keeps only its SHA-256, and a `TokenCache`
spares each request a store read to find its agent. Who may create a workspace or register
into one is `coordinator._admission`'s rule: on a coordinator that admits by invitation, the
admin secret creates, a member's credential registers, and a refusal never says whether the
workspace exists.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from leasefs.wire import AgentInfo, AgentRegistration, ErrorCode, EventType, Registered, Workspace

from ._admission import ADMIN_SECRET_FILE, Admission, hash_secret, new_secret
from ._component import StoreComponent
from ._errors import ConflictError, Forbidden, NotFoundError, Unauthenticated
from ._records import agent_info, hash_token, record
from ._signals import EventSignals
from ._tokens import TokenCache
from .store import AgentRow, Store, Tx


class Membership(StoreComponent):
    """Workspaces and agents: create, look up, register, authenticate."""

    def __init__(
        self,
        store: Store,
        signals: EventSignals,
        clock: Callable[[], float] = time.time,
        admission: Admission | None = None,
    ) -> None:
        super().__init__(store, signals, clock)
        self._tokens = TokenCache()
        self.admission = admission or Admission()
        self.failed_authentications = 0  # since start; shown by /v1/health and leasefs status

    async def create_workspace(
        self, name: str, admin_secret: str | None = None, owner: str = "owner"
    ) -> Workspace:
        """Create ``name``; where admission is by invitation, only with the admin secret, and
        the answer then carries the credential of its owner (a member named ``owner``)."""
        if not self.admission.open and not self.admission.is_admin_secret(admin_secret):
            self.failed_authentications += 1
            raise Forbidden(
                "creating a workspace on this coordinator needs its admin secret (printed by "
                "`leasefs serve` on its first start, kept in its data directory as "
                f"{ADMIN_SECRET_FILE}); to join an existing one, ask an admin for an invitation",
                code=ErrorCode.ADMIN_SECRET_REQUIRED,
            )
        credential = None if self.admission.open else new_secret("lfm_")

        def create(tx: Tx) -> Workspace:
            if tx.workspace_by_name(name) is not None:
                raise ConflictError(
                    f"workspace {name!r} already exists", code=ErrorCode.WORKSPACE_EXISTS
                )
            row = tx.insert_workspace(name, self._clock())
            record(
                tx,
                row.id,
                row.created_at,
                None,
                "workspace.created",
                None,
                {"name": name},
                publish=False,
            )
            if credential is not None:
                member = tx.insert_member(
                    row.id, owner, "owner", hash_secret(credential), None, row.created_at
                )
                record(tx, row.id, row.created_at, None, "member.joined", None,
                       {"member": member.name, "role": member.role}, publish=False)  # fmt: skip
            return Workspace(name=row.name, created_at=row.created_at, credential=credential)

        return await self._store.run(create)

    async def get_workspace(self, name: str, agent: AgentRow | None = None) -> Workspace:
        """Where admission is by invitation, only an agent of the workspace learns it exists."""
        row = await self._store.read(lambda tx: tx.workspace_by_name(name))
        if row is None or not (self.admission.open or (agent and agent.workspace_id == row.id)):
            raise NotFoundError(
                f"there is no workspace named {name!r} that this caller may see",
                code=ErrorCode.UNKNOWN_WORKSPACE,
            )
        return Workspace(name=row.name, created_at=row.created_at)

    async def register(self, registration: AgentRegistration) -> Registered:
        token = secrets.token_urlsafe(32)
        credential_hash = hash_secret(registration.credential) if registration.credential else None

        def register(tx: Tx) -> Registered:
            workspace = tx.workspace_by_name(registration.workspace)
            member = tx.member_by_credential_hash(credential_hash) if credential_hash else None
            if member is not None and (
                workspace is None or member.workspace_id != workspace.id or member.revoked_at
            ):
                member = None
            if member is None and not self.admission.open:
                self.failed_authentications += 1
                raise Forbidden(
                    "joining a workspace on this coordinator needs an invitation: ask an "
                    "admin for one (`leasefs invite`), then `leasefs join` it on this machine",
                    code=ErrorCode.INVITATION_REQUIRED,
                )
            if workspace is None:
                raise NotFoundError(
                    f"there is no workspace named {registration.workspace!r}; create it first",
                    code=ErrorCode.UNKNOWN_WORKSPACE,
                )
            now = self._clock()
            row = tx.insert_agent(
                workspace.id,
                registration.name,
                registration.host,
                registration.tool,
                hash_token(token),
                now,
                role=member.role if member is not None else "admin",
                member_id=member.id if member is not None else None,
            )
            info = agent_info(row)
            record(tx, workspace.id, now, row.id, EventType.AGENT_JOINED, None, info.model_dump())
            return Registered(workspace=workspace.name, agent=info, token=token)

        registered = await self._store.run(register)
        self._signals.notify([await self._workspace_id(registered.workspace)])
        return registered

    async def _workspace_id(self, name: str) -> int:
        row = await self._store.read(lambda tx: tx.workspace_by_name(name))
        assert row is not None
        return row.id

    async def authenticate(self, token: str | None) -> AgentRow:
        try:
            return await self._authenticate(token)
        except Unauthenticated:
            self.failed_authentications += 1
            raise

    async def _authenticate(self, token: str | None) -> AgentRow:
        if not token:
            raise Unauthenticated("this call needs an agent token: 'Authorization: Bearer <token>'")
        token_hash = hash_token(token)
        row = self._tokens.get(token_hash)
        if row is None:
            generation = self._tokens.generation
            row = await self._store.read(lambda tx: tx.agent_by_token_hash(token_hash))
            if row is not None:
                self._tokens.remember(token_hash, row, generation)
        if row is None:
            raise Unauthenticated("the agent token is not valid; register again to get one")
        if row.left_at is not None:
            await self._record_refused(row)
            if row.member_id is not None and await self._member_revoked(row.member_id):
                raise Unauthenticated(
                    "this agent's membership was revoked by an admin of the workspace",
                    code=ErrorCode.REVOKED,
                )
            raise Unauthenticated(
                "this agent has left its workspace; register again", code=ErrorCode.AGENT_LEFT
            )
        return row

    async def _record_refused(self, agent: AgentRow) -> None:
        """A retired agent's token came back: its workspace's audit log says so."""

        def write(tx: Tx) -> None:
            data = {"agent": agent.name, "why": "token of an agent that left or was revoked"}
            record(tx, agent.workspace_id, self._clock(), agent.id, "auth.failed", None, data,
                   publish=False)  # fmt: skip

        await self._store.run(write)

    async def _member_revoked(self, member_id: int) -> bool:
        member = await self._store.read(lambda tx: tx.member_by_id(member_id))
        return member is not None and member.revoked_at is not None

    async def describe_agent(self, agent: AgentRow) -> AgentInfo:
        return agent_info(agent)

    def forget_token(self, agent_id: int) -> None:
        """``agent_id`` left: its token must not be trusted from the cache again."""
        self._tokens.forget(agent_id)
