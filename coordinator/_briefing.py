"""The briefing: the team state an agent needs at the start of a session, in one read."""

from __future__ import annotations

import time
from collections.abc import Callable

from leasefs.wire import AuditEntry, Briefing, HotFile, PathStatus, any_overlap

from ._knowledge import context_model, memories_model
from ._messages import unread_threads
from ._records import agent_info
from ._work import works_model
from .store import AgentRow, AuditQuery, Store, Tx

_DAY_S = 86400.0


def build_briefing(tx: Tx, agent: AgentRow, leases: list[PathStatus], now: float) -> Briefing:
    ws = agent.workspace_id
    active = works_model(tx, tx.works(ws, ["active"], 100))
    parked = works_model(tx, tx.works(ws, ["parked"], 100))
    finished = works_model(tx, tx.works(ws, ["finished"], 5))
    in_play = [p for w in active for p in w.paths] + [s.path for s in leases]
    memories = tx.search_memories(ws, None, now, 200)
    if in_play:
        relevant = [m for m in memories if any_overlap(m.paths, in_play)]
        memories = relevant + [m for m in memories if not m.paths and m not in relevant]
    conflicts_rows = tx.query_audit(AuditQuery(workspace_id=ws, since=now - _DAY_S, limit=100000))
    names = tx.agents_by_ids(r.agent_id for r in conflicts_rows if r.agent_id is not None)
    conflicts = [
        AuditEntry(
            id=r.id, at=r.at, agent_id=r.agent_id,
            agent_name=names[r.agent_id].name if r.agent_id in names else None,
            action=r.action, path=r.path, detail=r.detail,
        )
        for r in conflicts_rows
        if r.action == "conflict.detected"
    ][-20:]  # fmt: skip
    workspace = tx.workspace_by_id(ws)
    return Briefing(
        workspace=workspace.name,
        you=agent_info(agent),
        context=context_model(tx, tx.context_doc(ws)),
        active_work=active,
        parked_work=parked,
        recently_finished=finished,
        leases=leases,
        memories=memories_model(tx, memories[:20]),
        follow_ups=[s for w in finished if w.handoff for s in w.handoff.next_steps],
        conflicts=conflicts,
        unread=unread_threads(tx, agent),
        hot_files=[HotFile(path=p, versions=n) for p, n in tx.hot_paths(ws, now - _DAY_S, 10)],
    )


class Briefings:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def brief(self, agent: AgentRow, leases: list[PathStatus]) -> Briefing:
        return await self._store.read(lambda tx: build_briefing(tx, agent, leases, self._clock()))
