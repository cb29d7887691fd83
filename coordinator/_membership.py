"""Who is in the team: workspaces, agents registering with a token, and tokens checked.

A token is shown once, at registration; the store keeps only its SHA-256, and a `TokenCache`
spares each request a store read to find its agent.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from leasefs.wire import AgentInfo, AgentRegistration, ErrorCode, EventType, Registered, Workspace

from ._component import StoreComponent
from ._errors import ConflictError, NotFoundError, Unauthenticated
from ._records import agent_info, hash_token, record
from ._signals import EventSignals
from ._tokens import TokenCache
from .store import AgentRow, Store, Tx


class Membership(StoreComponent):
    """Workspaces and agents: create, look up, register, authenticate."""

    def __init__(
        self, store: Store, signals: EventSignals, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(store, signals, clock)
        self._tokens = TokenCache()

    async def create_workspace(self, name: str) -> Workspace:
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
            return Workspace(name=row.name, created_at=row.created_at)

        return await self._store.run(create)

    async def get_workspace(self, name: str) -> Workspace:
        row = await self._store.read(lambda tx: tx.workspace_by_name(name))
        if row is None:
            raise NotFoundError(
                f"there is no workspace named {name!r}", code=ErrorCode.UNKNOWN_WORKSPACE
            )
        return Workspace(name=row.name, created_at=row.created_at)

    async def register(self, registration: AgentRegistration) -> Registered:
        token = secrets.token_urlsafe(32)

        def register(tx: Tx) -> Registered:
            workspace = tx.workspace_by_name(registration.workspace)
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
            raise Unauthenticated(
                "this agent has left its workspace; register again", code=ErrorCode.AGENT_LEFT
            )
        return row

    async def describe_agent(self, agent: AgentRow) -> AgentInfo:
        return agent_info(agent)

    def forget_token(self, agent_id: int) -> None:
        """``agent_id`` left: its token must not be trusted from the cache again."""
        self._tokens.forget(agent_id)
