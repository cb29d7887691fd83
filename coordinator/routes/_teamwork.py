"""Routes for working as a team: work sessions, memories, the shared context document,
threads of messages, and the briefing an agent reads when it starts.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from leasefs.wire import (
    Ask,
    Briefing,
    ContextDoc,
    ContextUpdate,
    Handoff,
    Memory,
    MemoryCreate,
    Reply,
    Thread,
    Work,
    WorkPark,
    WorkStart,
    WorkStarted,
    WorkStatus,
)

from ._deps import AgentDep, CoordinatorDep, RowId

router = APIRouter()

# -- work sessions ------------------------------------------------------------------------


@router.post("/v1/work", response_model=WorkStarted, status_code=201)
async def start_work(body: WorkStart, agent: AgentDep, c: CoordinatorDep) -> WorkStarted:
    return await c.work.start(agent, body)


@router.get("/v1/work", response_model=list[Work])
async def list_work(
    agent: AgentDep,
    c: CoordinatorDep,
    status: Annotated[list[WorkStatus] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Work]:
    return await c.work.with_status(agent, list(status or ["active", "parked"]), limit)


@router.get("/v1/work/{work_id}", response_model=Work)
async def get_work(work_id: RowId, agent: AgentDep, c: CoordinatorDep) -> Work:
    return await c.work.get(agent, work_id)


@router.post("/v1/work/{work_id}/finish", response_model=Work)
async def finish_work(work_id: RowId, body: Handoff, agent: AgentDep, c: CoordinatorDep) -> Work:
    return await c.work.finish(agent, work_id, body)


@router.post("/v1/work/{work_id}/park", response_model=Work)
async def park_work(work_id: RowId, body: WorkPark, agent: AgentDep, c: CoordinatorDep) -> Work:
    return await c.work.park(agent, work_id, body)


@router.post("/v1/work/{work_id}/resume", response_model=Work)
async def resume_work(work_id: RowId, agent: AgentDep, c: CoordinatorDep) -> Work:
    return await c.work.resume(agent, work_id)


@router.post("/v1/work/{work_id}/cancel", response_model=Work)
async def cancel_work(work_id: RowId, agent: AgentDep, c: CoordinatorDep) -> Work:
    return await c.work.cancel(agent, work_id)


# -- memories and the context document --------------------------------------------------


@router.post("/v1/memories", response_model=Memory, status_code=201)
async def remember(body: MemoryCreate, agent: AgentDep, c: CoordinatorDep) -> Memory:
    return await c.knowledge.remember(agent, body)


@router.get("/v1/memories", response_model=list[Memory])
async def recall(
    agent: AgentDep,
    c: CoordinatorDep,
    query: Annotated[str | None, Query(max_length=2000)] = None,
    path: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[Memory]:
    return await c.knowledge.recall(agent, query, path or [], limit)


@router.delete("/v1/memories/{memory_id}", status_code=204)
async def forget(memory_id: RowId, agent: AgentDep, c: CoordinatorDep) -> Response:
    await c.knowledge.forget(agent, memory_id)
    return Response(status_code=204)


@router.get("/v1/context", response_model=ContextDoc)
async def get_context(agent: AgentDep, c: CoordinatorDep) -> ContextDoc:
    return await c.knowledge.context(agent)


@router.put("/v1/context", response_model=ContextDoc)
async def put_context(body: ContextUpdate, agent: AgentDep, c: CoordinatorDep) -> ContextDoc:
    return await c.knowledge.update_context(agent, body)


# -- threads and messages ---------------------------------------------------------------


@router.post("/v1/threads", response_model=Thread, status_code=201)
async def ask(body: Ask, agent: AgentDep, c: CoordinatorDep) -> Thread:
    return await c.messages.ask(agent, body)


@router.get("/v1/threads/{thread_id}", response_model=Thread)
async def thread(thread_id: RowId, agent: AgentDep, c: CoordinatorDep) -> Thread:
    return await c.messages.thread(agent, thread_id)


@router.post("/v1/threads/{thread_id}/replies", response_model=Thread)
async def reply(thread_id: RowId, body: Reply, agent: AgentDep, c: CoordinatorDep) -> Thread:
    return await c.messages.reply(agent, thread_id, body)


@router.get("/v1/inbox", response_model=list[Thread])
async def inbox(agent: AgentDep, c: CoordinatorDep) -> list[Thread]:
    return await c.messages.inbox(agent)


# -- the briefing -----------------------------------------------------------------------


@router.get("/v1/briefing", response_model=Briefing)
async def briefing(agent: AgentDep, c: CoordinatorDep) -> Briefing:
    return await c.briefings.brief(agent, await c.path_status(agent, None))
