"""Team memory (searchable, expiring, marked stale as its files change) and the context document."""

from __future__ import annotations

from collections.abc import Sequence

from leasefs.wire import (
    ContextDoc,
    ContextUpdate,
    ErrorCode,
    EventType,
    Memory,
    MemoryCreate,
    any_overlap,
)

from ._admission import require_role
from ._component import StoreComponent
from ._errors import ConflictError, NotFoundError
from ._records import agent_info, record
from .store import AgentRow, ContextRow, MemoryRow, Tx

STALE_AFTER_CHANGES = 5
"""A memory about files that have had this many versions since is flagged stale."""


def fts_query(text: str) -> str:
    """Search words as FTS5 literals joined by OR: no query syntax reaches SQLite."""
    cleaned = "".join(c if c.isprintable() else " " for c in text.replace('"', " "))
    words = [w for w in cleaned.split() if w]
    return " OR ".join(f'"{w}"' for w in words)


def memory_model(tx: Tx, row: MemoryRow, agents: dict[int, AgentRow]) -> Memory:
    literal = [p for p in row.paths if not set("*?[") & set(p)]
    changes = tx.versions_since(row.workspace_id, literal, row.created_at)
    return Memory(
        id=row.id, text=row.text, paths=row.paths, tags=row.tags,
        author=agent_info(agents[row.agent_id]), created_at=row.created_at,
        expires_at=row.expires_at, stale=changes >= STALE_AFTER_CHANGES, changes_since=changes,
    )  # fmt: skip


def memories_model(tx: Tx, rows: Sequence[MemoryRow]) -> list[Memory]:
    agents = tx.agents_by_ids(r.agent_id for r in rows)
    return [memory_model(tx, r, agents) for r in rows]


def context_model(tx: Tx, row: ContextRow | None) -> ContextDoc:
    if row is None:
        return ContextDoc(version=0, text="", updated_by=None, updated_at=None)
    by = tx.agents_by_ids([row.updated_by]).get(row.updated_by) if row.updated_by else None
    return ContextDoc(
        version=row.version, text=row.text, updated_by=agent_info(by) if by else None,
        updated_at=row.updated_at,
    )  # fmt: skip


class Knowledge(StoreComponent):
    async def remember(self, agent: AgentRow, request: MemoryCreate) -> Memory:
        require_role(agent, "member", "remembering")

        def remember(tx: Tx) -> Memory:
            now = self._clock()
            expires = now + request.ttl_days * 86400 if request.ttl_days else None
            row = tx.insert_memory(
                agent.workspace_id,
                agent.id,
                request.text,
                request.paths,
                request.tags,
                now,
                expires,
            )
            record(tx, agent.workspace_id, now, agent.id, "memory.created", None,
                   {"memory_id": row.id}, publish=False)  # fmt: skip
            return memories_model(tx, [row])[0]

        return await self._store.run(remember)

    async def forget(self, agent: AgentRow, memory_id: int) -> None:
        require_role(agent, "member", "forgetting a memory")

        def forget(tx: Tx) -> None:
            if tx.memory_by_id(agent.workspace_id, memory_id) is None:
                raise NotFoundError(
                    f"there is no memory {memory_id}", code=ErrorCode.UNKNOWN_MEMORY
                )
            now = self._clock()
            tx.forget_memory(memory_id, now)
            record(tx, agent.workspace_id, now, agent.id, "memory.forgotten", None,
                   {"memory_id": memory_id}, publish=False)  # fmt: skip

        await self._store.run(forget)

    async def recall(
        self, agent: AgentRow, query: str | None, paths: Sequence[str], limit: int = 20
    ) -> list[Memory]:
        def recall(tx: Tx) -> list[Memory]:
            match = fts_query(query) if query else None
            rows = tx.search_memories(agent.workspace_id, match or None, self._clock(), limit * 5)
            if paths:
                rows = [r for r in rows if any_overlap(r.paths, list(paths))]
            return memories_model(tx, rows[:limit])

        return await self._store.read(recall)

    async def context(self, agent: AgentRow) -> ContextDoc:
        return await self._store.read(
            lambda tx: context_model(tx, tx.context_doc(agent.workspace_id))
        )

    async def update_context(self, agent: AgentRow, update: ContextUpdate) -> ContextDoc:
        require_role(agent, "member", "changing the context document")

        def put(tx: Tx) -> ContextDoc:
            current = tx.context_doc(agent.workspace_id)
            version = current.version if current else 0
            if version != update.expected_version:
                raise ConflictError(
                    f"the context document is at version {version}, not "
                    f"{update.expected_version}: someone updated it meanwhile; read it again "
                    "and merge your change",
                    code=ErrorCode.CONTEXT_CONFLICT,
                    details={"current_version": version},
                )
            now = self._clock()
            row = ContextRow(agent.workspace_id, version + 1, update.text, agent.id, now)
            tx.put_context_doc(row)
            record(tx, agent.workspace_id, now, agent.id, EventType.CONTEXT_UPDATED, None,
                   {"version": row.version})  # fmt: skip
            return context_model(tx, row)

        doc = await self._store.run(put)
        self._signals.notify([agent.workspace_id])
        return doc
