"""The journal: a workspace's event stream, its audit log, and conflict reports from mounts."""

from __future__ import annotations

from dataclasses import replace

import trio

from leasefs.wire import AuditEntry, ConflictReport, Event, EventType

from ._component import StoreComponent
from ._records import record
from .store import AgentRow, AuditQuery, EventRow, Tx


class Journal(StoreComponent):
    async def events_after(self, agent: AgentRow, after_id: int, limit: int = 500) -> list[Event]:
        rows: list[EventRow] = await self._store.read(
            lambda tx: tx.events_after(agent.workspace_id, after_id, limit)
        )
        return [
            Event(
                id=r.id,
                type=EventType(r.type),
                at=r.at,
                agent_id=r.agent_id,
                path=r.path,
                data=r.data,
            )
            for r in rows
        ]

    async def last_event_id(self, agent: AgentRow) -> int:
        return await self._store.read(lambda tx: tx.last_event_id(agent.workspace_id))

    async def report_conflict(self, agent: AgentRow, report: ConflictReport) -> None:
        def write(tx: Tx) -> None:
            data = report.model_dump(exclude={"path"})
            now = self._clock()
            record(
                tx,
                agent.workspace_id,
                now,
                agent.id,
                EventType.CONFLICT_DETECTED,
                report.path,
                data,
            )

        await self._store.run(write)
        self._signals.notify([agent.workspace_id])

    def event_signal(self, workspace_id: int) -> trio.Event:
        """An event that is set when the workspace's stream has grown; take it before reading."""
        return self._signals.signal(workspace_id)

    async def audit(self, agent: AgentRow, query: AuditQuery) -> list[AuditEntry]:
        def audit(tx: Tx) -> list[AuditEntry]:
            rows = tx.query_audit(replace(query, workspace_id=agent.workspace_id))
            agents = tx.agents_by_ids(r.agent_id for r in rows if r.agent_id is not None)
            return [
                AuditEntry(
                    id=r.id,
                    at=r.at,
                    agent_id=r.agent_id,
                    agent_name=agents[r.agent_id].name if r.agent_id in agents else None,
                    action=r.action,
                    path=r.path,
                    detail=r.detail,
                )
                for r in rows
            ]

        return await self._store.read(audit)
