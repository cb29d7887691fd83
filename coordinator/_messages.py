"""Questions and answers between agents: threads addressed to an agent, a work session or the team."""

from __future__ import annotations

from leasefs.wire import Ask, ErrorCode, EventType, Message, Reply, Thread

from ._admission import require_role
from ._component import StoreComponent
from ._errors import ConflictError, NotFoundError
from ._records import agent_info, record
from .store import AgentRow, ThreadRow, Tx


def thread_model(tx: Tx, row: ThreadRow, reader_id: int) -> Thread:
    messages = tx.messages_of(row.id)
    agents = tx.agents_by_ids([row.opened_by, *(m.sender_id for m in messages)])
    read = tx.read_message_ids(reader_id, [m.id for m in messages])
    to = row.to_kind if row.to_kind == "team" else f"{row.to_kind}:{row.to_id}"
    return Thread(
        id=row.id, topic=row.topic, to=to, paths=row.paths,
        opened_by=agent_info(agents[row.opened_by]), closed=row.closed, created_at=row.created_at,
        messages=[
            Message(id=m.id, thread_id=m.thread_id, sender=agent_info(agents[m.sender_id]),
                    body=m.body, created_at=m.created_at, read=m.id in read)
            for m in messages
        ],
    )  # fmt: skip


def unread_threads(tx: Tx, agent: AgentRow, limit: int = 50) -> list[Thread]:
    """Threads for this agent (directly, via its active work, or the team) with unread messages."""
    mine = [w.id for w in tx.works(agent.workspace_id, ["active"], 1000) if w.owner_id == agent.id]
    threads = [
        thread_model(tx, t, agent.id)
        for t in tx.threads_for(agent.workspace_id, agent.id, mine, 200)
    ]
    return [t for t in threads if any(not m.read for m in t.messages)][:limit]


class Messages(StoreComponent):
    def _recipient(self, tx: Tx, agent: AgentRow, to: str) -> tuple[str, int | None]:
        kind, _, target = to.partition(":")
        if kind == "team":
            return "team", None
        if kind == "work":
            if tx.work_by_id(agent.workspace_id, int(target)) is None:
                raise NotFoundError(
                    f"there is no work session {target}", code=ErrorCode.UNKNOWN_WORK
                )
            return "work", int(target)
        agent_id = int(target) if target.isdigit() else tx.agent_by_name(agent.workspace_id, target)
        if agent_id is None or agent_id not in tx.agents_by_ids([agent_id]):
            raise NotFoundError(
                f"there is no agent {target!r} in this workspace", code=ErrorCode.UNKNOWN_AGENT
            )
        if tx.agents_by_ids([agent_id])[agent_id].workspace_id != agent.workspace_id:
            raise NotFoundError(
                f"there is no agent {target!r} in this workspace", code=ErrorCode.UNKNOWN_AGENT
            )
        return "agent", agent_id

    async def ask(self, agent: AgentRow, ask: Ask) -> Thread:
        require_role(agent, "member", "sending a message")

        def ask_tx(tx: Tx) -> Thread:
            kind, target = self._recipient(tx, agent, ask.to)
            now = self._clock()
            thread = tx.insert_thread(
                agent.workspace_id, ask.topic, agent.id, kind, target, ask.paths, now
            )
            message = tx.insert_message(thread.id, agent.id, ask.question, now)
            record(tx, agent.workspace_id, now, agent.id, EventType.MESSAGE_CREATED, None,
                   {"thread_id": thread.id, "message_id": message.id, "to_kind": kind,
                    "to_id": target, "topic": ask.topic})  # fmt: skip
            return thread_model(tx, thread, agent.id)

        thread = await self._store.run(ask_tx)
        self._signals.notify([agent.workspace_id])
        return thread

    async def reply(self, agent: AgentRow, thread_id: int, reply: Reply) -> Thread:
        require_role(agent, "member", "replying")

        def reply_tx(tx: Tx) -> Thread:
            thread = self._find(tx, agent, thread_id)
            if thread.closed:
                raise ConflictError(f"thread {thread_id} is closed", code=ErrorCode.THREAD_CLOSED)
            now = self._clock()
            message = tx.insert_message(thread.id, agent.id, reply.body, now)
            if reply.close:
                tx.close_thread(thread.id)
            record(tx, agent.workspace_id, now, agent.id, EventType.MESSAGE_CREATED, None,
                   {"thread_id": thread.id, "message_id": message.id, "to_kind": "agent",
                    "to_id": thread.opened_by, "topic": thread.topic, "closed": reply.close})  # fmt: skip
            found = tx.thread_by_id(agent.workspace_id, thread.id)
            assert found is not None
            return thread_model(tx, found, agent.id)

        thread = await self._store.run(reply_tx)
        self._signals.notify([agent.workspace_id])
        return thread

    def _find(self, tx: Tx, agent: AgentRow, thread_id: int) -> ThreadRow:
        thread = tx.thread_by_id(agent.workspace_id, thread_id)
        if thread is None:
            raise NotFoundError(f"there is no thread {thread_id}", code=ErrorCode.UNKNOWN_THREAD)
        return thread

    async def thread(self, agent: AgentRow, thread_id: int) -> Thread:
        """The whole thread; its messages count as read by this agent from now on."""

        def read(tx: Tx) -> Thread:
            found = thread_model(tx, self._find(tx, agent, thread_id), agent.id)
            tx.mark_read(agent.id, [m.id for m in found.messages])
            return found

        return await self._store.run(read)

    async def inbox(self, agent: AgentRow) -> list[Thread]:
        """Threads with messages this agent has not read yet; they count as read from now on."""

        def inbox(tx: Tx) -> list[Thread]:
            threads = unread_threads(tx, agent)
            tx.mark_read(agent.id, [m.id for t in threads for m in t.messages])
            return threads

        return await self._store.run(inbox)
