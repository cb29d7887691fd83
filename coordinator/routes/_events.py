"""Routes for what happened: the event stream (server-sent events), its head, conflict
reports, and the audit log.

The stream resumes from ``?after=`` or the ``Last-Event-ID`` a reconnecting client sends, and
never skips an event committed while it was reading.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from sse_starlette import EventSourceResponse

from leasefs.wire import AuditEntry, ConflictReport, EventsHead, EventType

from .._errors import BadRequest
from .._service import Coordinator
from ..store import AgentRow, AuditQuery
from ._deps import MAX_ROW_ID, AgentDep, CoordinatorDep, checked_key

SSE_PING_S = 15

router = APIRouter()


@router.get("/v1/events", response_class=EventSourceResponse)
async def events(
    agent: AgentDep,
    c: CoordinatorDep,
    after: Annotated[int | None, Query(ge=0, le=MAX_ROW_ID)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventSourceResponse:
    start = after
    if start is None and last_event_id:
        if not last_event_id.isdigit() or int(last_event_id) > MAX_ROW_ID:
            raise BadRequest("Last-Event-ID must be an event id (a whole number)")
        start = int(last_event_id)
    return EventSourceResponse(_event_stream(c, agent, start or 0), ping=SSE_PING_S)


@router.get("/v1/events/head", response_model=EventsHead)
async def events_head(agent: AgentDep, c: CoordinatorDep) -> EventsHead:
    return EventsHead(last_id=await c.journal.last_event_id(agent))


@router.post("/v1/conflicts", status_code=204)
async def report_conflict(body: ConflictReport, agent: AgentDep, c: CoordinatorDep) -> Response:
    await c.journal.report_conflict(agent, body)
    return Response(status_code=204)


@router.get("/v1/audit", response_model=list[AuditEntry])
async def audit(
    agent: AgentDep,
    c: CoordinatorDep,
    agent_id: Annotated[int | None, Query(ge=0, le=MAX_ROW_ID)] = None,
    path: str | None = None,
    since: float | None = None,
    until: float | None = None,
    after_id: Annotated[int | None, Query(ge=0, le=MAX_ROW_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=100000)] = 1000,
) -> list[AuditEntry]:
    query = AuditQuery(
        workspace_id=agent.workspace_id,
        agent_id=agent_id,
        path=checked_key(path) if path is not None else None,
        since=since,
        until=until,
        after_id=after_id,
        limit=limit,
    )
    return await c.journal.audit(agent, query)


async def _event_stream(
    c: Coordinator, agent: AgentRow, after: int
) -> AsyncIterator[dict[str, str]]:
    """Stored events after ``after``, then each new one as it is committed; never a gap.

    Ends after the event of this very agent leaving (or being revoked): a reconnection is
    then refused with 401, so a retired agent hears nothing more of the team."""
    last = after
    while True:
        signal = c.journal.event_signal(agent.workspace_id)
        batch = await c.journal.events_after(agent, last)
        for event in batch:
            last = event.id
            yield {"id": str(event.id), "event": event.type.value, "data": event.model_dump_json()}
            if event.type is EventType.AGENT_LEFT and event.agent_id == agent.id:
                return
        if not batch:
            await signal.wait()
