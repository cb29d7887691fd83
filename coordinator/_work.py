"""Work sessions: declared intent, parked progress and hand-offs between agents."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from leasefs.wire import (
    ROLE_RANK,
    ErrorCode,
    EventType,
    Handoff,
    Work,
    WorkPark,
    WorkStart,
    WorkStarted,
    any_overlap,
)

from ._admission import require_role
from ._component import StoreComponent
from ._errors import ConflictError, NotFoundError
from ._records import agent_info, record
from .store import AgentRow, Tx, WorkRow


def work_model(row: WorkRow, agents: dict[int, AgentRow]) -> Work:
    return Work(
        id=row.id, title=row.title, plan=row.plan, paths=row.paths, status=row.status,  # type: ignore[arg-type]
        owner=agent_info(agents[row.owner_id]), progress=row.progress, notes=row.notes,
        handoff=Handoff.model_validate(row.handoff) if row.handoff else None,
        created_at=row.created_at, updated_at=row.updated_at,
    )  # fmt: skip


def works_model(tx: Tx, rows: list[WorkRow]) -> list[Work]:
    agents = tx.agents_by_ids(r.owner_id for r in rows)
    return [work_model(r, agents) for r in rows]


class WorkSessions(StoreComponent):
    async def start(self, agent: AgentRow, request: WorkStart) -> WorkStarted:
        require_role(agent, "member", "starting work")

        def start(tx: Tx) -> WorkStarted:
            now = self._clock()
            row = tx.insert_work(
                agent.workspace_id, agent.id, request.title, request.plan, request.paths, now
            )
            others = [
                w
                for w in tx.works(agent.workspace_id, ["active"], 1000)
                if w.id != row.id and w.owner_id != agent.id and any_overlap(w.paths, row.paths)
            ]
            record(tx, agent.workspace_id, now, agent.id, EventType.WORK_CHANGED, None,
                   {"work_id": row.id, "status": "active", "title": row.title})  # fmt: skip
            return WorkStarted(work=works_model(tx, [row])[0], overlapping=works_model(tx, others))

        started = await self._store.run(start)
        self._signals.notify([agent.workspace_id])
        return started

    async def get(self, agent: AgentRow, work_id: int) -> Work:
        def get(tx: Tx) -> Work:
            return works_model(tx, [self._find(tx, agent, work_id)])[0]

        return await self._store.read(get)

    async def with_status(
        self, agent: AgentRow, statuses: list[str], limit: int = 100
    ) -> list[Work]:
        return await self._store.read(
            lambda tx: works_model(tx, tx.works(agent.workspace_id, statuses, limit))
        )

    def _find(self, tx: Tx, agent: AgentRow, work_id: int) -> WorkRow:
        row = tx.work_by_id(agent.workspace_id, work_id)
        if row is None:
            raise NotFoundError(
                f"there is no work session {work_id} in this workspace", code=ErrorCode.UNKNOWN_WORK
            )
        return row

    async def _change(
        self,
        agent: AgentRow,
        work_id: int,
        allowed_from: set[str],
        change: Callable[[WorkRow, float], WorkRow],
        *,
        owner_only: bool = True,
        or_admin: bool = False,
    ) -> Work:
        """``or_admin``: an admin member (of a coordinator that admits by invitation) may do
        it to another agent's work too; on a machine-local one every agent is an admin, and
        work stays its owner's alone."""

        def apply(tx: Tx) -> Work:
            row = self._find(tx, agent, work_id)
            admin = (
                or_admin
                and agent.member_id is not None
                and ROLE_RANK.get(agent.role, -1) >= ROLE_RANK["admin"]
            )
            if owner_only and row.owner_id != agent.id and not admin:
                owner = tx.agents_by_ids([row.owner_id])[row.owner_id]
                who = "its owner or an admin" if or_admin else "its owner"
                raise ConflictError(
                    f"work {work_id} belongs to {owner.name}; only {who} can do that",
                    code=ErrorCode.NOT_OWNER,
                )
            if row.status not in allowed_from:
                raise ConflictError(
                    f"work {work_id} is {row.status}; this needs it to be "
                    + " or ".join(sorted(allowed_from)),
                    code=ErrorCode.WRONG_STATUS,
                )
            now = self._clock()
            new = change(row, now)
            tx.update_work(new)
            record(tx, agent.workspace_id, now, agent.id, EventType.WORK_CHANGED, None,
                   {"work_id": new.id, "status": new.status, "title": new.title})  # fmt: skip
            return works_model(tx, [new])[0]

        work = await self._store.run(apply)
        self._signals.notify([agent.workspace_id])
        return work

    async def finish(self, agent: AgentRow, work_id: int, handoff: Handoff) -> Work:
        require_role(agent, "member", "finishing work")
        return await self._change(
            agent, work_id, {"active"},
            lambda row, now: replace(row, status="finished", handoff=handoff.model_dump(), updated_at=now),
        )  # fmt: skip

    async def park(self, agent: AgentRow, work_id: int, park: WorkPark) -> Work:
        require_role(agent, "member", "parking work")
        return await self._change(
            agent, work_id, {"active"},
            lambda row, now: replace(row, status="parked", progress=park.progress, notes=park.notes, updated_at=now),
        )  # fmt: skip

    async def resume(self, agent: AgentRow, work_id: int) -> Work:
        """Any agent may take over parked work: it becomes the owner."""
        require_role(agent, "member", "resuming work")
        return await self._change(
            agent, work_id, {"parked"},
            lambda row, now: replace(row, status="active", owner_id=agent.id, updated_at=now),
            owner_only=False,
        )  # fmt: skip

    async def cancel(self, agent: AgentRow, work_id: int) -> Work:
        require_role(agent, "member", "cancelling work")
        return await self._change(
            agent, work_id, {"active", "parked"},
            lambda row, now: replace(row, status="cancelled", updated_at=now), or_admin=True,
        )  # fmt: skip
