"""The HTTP front of the coordinator: routes under /v1 over `Coordinator`, errors in one place.

FastAPI (a Starlette app) validates every body and query against the wire models and
derives the OpenAPI document from them, served at /v1/openapi.json.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from typing import Annotated, Any

import trio
from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi import Path as FastAPIPath
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from sse_starlette import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from leasefs.wire import (
    LEASEFS_VERSION,
    AgentInfo,
    AgentRegistration,
    Ask,
    AuditEntry,
    BlobInfo,
    Briefing,
    ConflictReport,
    ContextDoc,
    ContextUpdate,
    ErrorBody,
    ErrorCode,
    EventsHead,
    Handoff,
    Health,
    InvalidPath,
    LeaseGrant,
    LeaseRequest,
    Memory,
    MemoryCreate,
    PathStatus,
    Registered,
    ReleaseRequest,
    ReleaseResult,
    RenewRequest,
    RenewResult,
    Reply,
    ServerLimits,
    Thread,
    Version,
    VersionBatch,
    VersionCreate,
    Work,
    WorkPark,
    Workspace,
    WorkspaceCreate,
    WorkStart,
    WorkStarted,
    WorkStatus,
    Zone,
    ZoneAllowance,
    ZoneCreate,
    check_repo_path,
    check_sha256,
)

from ._body_limit import LimitJsonBodies
from ._connection import AnnounceEarlyClose
from ._errors import (
    BadRequest,
    CoordinatorError,
    NotFoundError,
    TooLarge,
    TooMany,
    Unprocessable,
)
from ._limits import Limits, RateLimiter
from ._service import Coordinator
from .store import AgentRow, AuditQuery

log = logging.getLogger("leasefs.coordinator")

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}
_SSE_PING_S = 15


async def _coordinator(request: Request) -> Coordinator:
    # async: FastAPI runs a plain-def dependency in a worker thread, a round trip per request.
    coordinator: Coordinator = request.app.state.coordinator
    return coordinator


def _admit(request: Request, key: object) -> None:
    """Spend one of ``key``'s request tokens, or refuse with when to come back."""
    limiter: RateLimiter = request.app.state.rate_limiter
    if (retry_after := limiter.admit(key)) is not None:
        raise TooMany(
            f"too many requests: the limit is {limiter.rate_per_s:g} per second per agent "
            f"(leasefs serve --rate-limit); try again in {retry_after:.2f} s",
            details={"retry_after_s": round(retry_after, 3)},
        )


async def _current_agent(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> AgentRow:
    token = None
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    agent = await (await _coordinator(request)).authenticate(token)
    _admit(request, agent.id)
    return agent


async def _rate_by_address(request: Request) -> None:
    """Calls made before an agent has a token are limited per client address."""
    _admit(request, request.client.host if request.client else "")


CoordinatorDep = Annotated[Coordinator, Depends(_coordinator)]
MAX_ROW_ID = 2**63 - 1  # SQLite's (and PostgreSQL's bigint) largest integer
RowId = Annotated[int, FastAPIPath(ge=0, le=MAX_ROW_ID)]
AgentDep = Annotated[AgentRow, Depends(_current_agent)]


def _repo_path(value: str) -> str:
    try:
        return check_repo_path(value)
    except InvalidPath as exc:
        raise Unprocessable(str(exc), code=ErrorCode.INVALID_PATH) from exc


def _digest(value: str) -> str:
    try:
        return check_sha256(value)
    except ValueError as exc:
        raise Unprocessable(str(exc), code=ErrorCode.INVALID_HASH) from exc


def create_app(coordinator: Coordinator) -> FastAPI:
    app = FastAPI(
        title="leasefs coordinator",
        version=LEASEFS_VERSION,
        openapi_url="/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
        responses=_ERRORS,
    )
    limits = coordinator.limits if coordinator is not None else Limits()
    app.state.coordinator = coordinator
    app.state.rate_limiter = RateLimiter(limits.rate_per_s, limits.rate_burst)
    app.add_middleware(LimitJsonBodies, max_bytes=limits.max_json_bytes)
    app.add_middleware(AnnounceEarlyClose)  # added last, so outermost: sees every answer
    _add_error_handlers(app)

    @app.get("/v1/health", response_model=Health)
    async def health() -> Health:
        return Health(
            status="ok",
            version=LEASEFS_VERSION,
            limits=ServerLimits(
                max_blob_bytes=limits.max_blob_bytes, max_json_bytes=limits.max_json_bytes
            ),
        )

    @app.post(
        "/v1/workspaces",
        response_model=Workspace,
        status_code=201,
        dependencies=[Depends(_rate_by_address)],
    )
    async def create_workspace(body: WorkspaceCreate, c: CoordinatorDep) -> Workspace:
        return await c.create_workspace(body.name)

    @app.get("/v1/workspaces/{name}", response_model=Workspace)
    async def get_workspace(name: str, c: CoordinatorDep) -> Workspace:
        return await c.get_workspace(name)

    @app.post(
        "/v1/agents",
        response_model=Registered,
        status_code=201,
        dependencies=[Depends(_rate_by_address)],
    )
    async def register(body: AgentRegistration, c: CoordinatorDep) -> Registered:
        return await c.register(body)

    @app.get("/v1/agents/me", response_model=AgentInfo)
    async def whoami(agent: AgentDep, c: CoordinatorDep) -> AgentInfo:
        return await c.describe_agent(agent)

    @app.delete("/v1/agents/me", status_code=204)
    async def leave(agent: AgentDep, c: CoordinatorDep) -> Response:
        await c.leave(agent)
        return Response(status_code=204)

    @app.post("/v1/leases/acquire", response_model=LeaseGrant)
    async def acquire(
        body: LeaseRequest, request: Request, agent: AgentDep, c: CoordinatorDep
    ) -> LeaseGrant:
        if body.wait_s <= 0:
            return await c.acquire(agent, body)
        grant: LeaseGrant = await _unless_disconnected(request, c.acquire(agent, body))
        return grant

    @app.post("/v1/leases/renew", response_model=RenewResult)
    async def renew(body: RenewRequest, agent: AgentDep, c: CoordinatorDep) -> RenewResult:
        return await c.renew(agent, body)

    @app.post("/v1/leases/release", response_model=ReleaseResult)
    async def release(body: ReleaseRequest, agent: AgentDep, c: CoordinatorDep) -> ReleaseResult:
        return await c.release(agent, body)

    @app.get("/v1/leases", response_model=list[PathStatus])
    async def holders(
        agent: AgentDep, c: CoordinatorDep, path: Annotated[list[str] | None, Query()] = None
    ) -> list[PathStatus]:
        paths = [_repo_path(p) for p in path] if path else None
        return await c.path_status(agent, paths)

    @app.head("/v1/blobs/{digest}")
    async def has_blob(digest: str, agent: AgentDep, c: CoordinatorDep) -> Response:
        size = await c.snapshots.blob_size(agent, _digest(digest))
        if size is None:
            return Response(status_code=404)
        return Response(status_code=200, headers={"Content-Length": str(size)})

    @app.put("/v1/blobs/{digest}", response_model=BlobInfo, status_code=201)
    async def put_blob(
        digest: str, request: Request, agent: AgentDep, c: CoordinatorDep
    ) -> BlobInfo:
        digest = _digest(digest)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > c.limits.max_blob_bytes:
            raise TooLarge(
                f"the blob is {length} bytes; this coordinator accepts at most "
                f"{c.limits.max_blob_bytes} (--max-blob-bytes)",
                details={"max_bytes": c.limits.max_blob_bytes},
            )
        return await c.snapshots.put_blob(agent, digest, request.stream())

    @app.get("/v1/blobs/{digest}", response_class=StreamingResponse)
    async def get_blob(digest: str, agent: AgentDep, c: CoordinatorDep) -> StreamingResponse:
        digest = _digest(digest)
        size = await c.snapshots.blob_size(agent, digest)
        if size is None:
            raise NotFoundError(f"no blob {digest} in this workspace", code=ErrorCode.UNKNOWN_BLOB)
        return StreamingResponse(
            c.snapshots.blob_chunks(digest),
            media_type="application/octet-stream",
            headers={"Content-Length": str(size)},
        )

    @app.post("/v1/versions", response_model=Version, status_code=201)
    async def create_version(body: VersionCreate, agent: AgentDep, c: CoordinatorDep) -> Version:
        return await c.snapshots.create_version(agent, body)

    @app.post("/v1/versions/batch", response_model=list[Version], status_code=201)
    async def create_versions(
        body: VersionBatch, agent: AgentDep, c: CoordinatorDep
    ) -> list[Version]:
        return await c.snapshots.create_versions(agent, body)

    @app.get("/v1/versions/latest", response_model=Version)
    async def latest_version(
        agent: AgentDep, c: CoordinatorDep, path: str, branch: str = "main"
    ) -> Version:
        return await c.snapshots.latest_version(agent, _repo_path(path), branch)

    @app.get("/v1/versions", response_model=list[Version])
    async def history(
        agent: AgentDep,
        c: CoordinatorDep,
        path: str,
        branch: str = "main",
        limit: Annotated[int, Query(ge=1, le=10000)] = 100,
    ) -> list[Version]:
        return await c.snapshots.history(agent, _repo_path(path), branch, limit)

    @app.get("/v1/events", response_class=EventSourceResponse)
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
        return EventSourceResponse(_event_stream(c, agent, start or 0), ping=_SSE_PING_S)

    @app.get("/v1/events/head", response_model=EventsHead)
    async def events_head(agent: AgentDep, c: CoordinatorDep) -> EventsHead:
        return EventsHead(last_id=await c.journal.last_event_id(agent))

    @app.post("/v1/conflicts", status_code=204)
    async def report_conflict(body: ConflictReport, agent: AgentDep, c: CoordinatorDep) -> Response:
        await c.journal.report_conflict(agent, body)
        return Response(status_code=204)

    @app.post("/v1/work", response_model=WorkStarted, status_code=201)
    async def start_work(body: WorkStart, agent: AgentDep, c: CoordinatorDep) -> WorkStarted:
        return await c.work.start(agent, body)

    @app.get("/v1/work", response_model=list[Work])
    async def list_work(
        agent: AgentDep,
        c: CoordinatorDep,
        status: Annotated[list[WorkStatus] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[Work]:
        return await c.work.with_status(agent, list(status or ["active", "parked"]), limit)

    @app.get("/v1/work/{work_id}", response_model=Work)
    async def get_work(work_id: RowId, agent: AgentDep, c: CoordinatorDep) -> Work:
        return await c.work.get(agent, work_id)

    @app.post("/v1/work/{work_id}/finish", response_model=Work)
    async def finish_work(
        work_id: RowId, body: Handoff, agent: AgentDep, c: CoordinatorDep
    ) -> Work:
        return await c.work.finish(agent, work_id, body)

    @app.post("/v1/work/{work_id}/park", response_model=Work)
    async def park_work(work_id: RowId, body: WorkPark, agent: AgentDep, c: CoordinatorDep) -> Work:
        return await c.work.park(agent, work_id, body)

    @app.post("/v1/work/{work_id}/resume", response_model=Work)
    async def resume_work(work_id: RowId, agent: AgentDep, c: CoordinatorDep) -> Work:
        return await c.work.resume(agent, work_id)

    @app.post("/v1/work/{work_id}/cancel", response_model=Work)
    async def cancel_work(work_id: RowId, agent: AgentDep, c: CoordinatorDep) -> Work:
        return await c.work.cancel(agent, work_id)

    @app.post("/v1/memories", response_model=Memory, status_code=201)
    async def remember(body: MemoryCreate, agent: AgentDep, c: CoordinatorDep) -> Memory:
        return await c.knowledge.remember(agent, body)

    @app.get("/v1/memories", response_model=list[Memory])
    async def recall(
        agent: AgentDep,
        c: CoordinatorDep,
        query: Annotated[str | None, Query(max_length=2000)] = None,
        path: Annotated[list[str] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 20,
    ) -> list[Memory]:
        return await c.knowledge.recall(agent, query, path or [], limit)

    @app.delete("/v1/memories/{memory_id}", status_code=204)
    async def forget(memory_id: RowId, agent: AgentDep, c: CoordinatorDep) -> Response:
        await c.knowledge.forget(agent, memory_id)
        return Response(status_code=204)

    @app.get("/v1/context", response_model=ContextDoc)
    async def get_context(agent: AgentDep, c: CoordinatorDep) -> ContextDoc:
        return await c.knowledge.context(agent)

    @app.put("/v1/context", response_model=ContextDoc)
    async def put_context(body: ContextUpdate, agent: AgentDep, c: CoordinatorDep) -> ContextDoc:
        return await c.knowledge.update_context(agent, body)

    @app.post("/v1/threads", response_model=Thread, status_code=201)
    async def ask(body: Ask, agent: AgentDep, c: CoordinatorDep) -> Thread:
        return await c.messages.ask(agent, body)

    @app.get("/v1/threads/{thread_id}", response_model=Thread)
    async def thread(thread_id: RowId, agent: AgentDep, c: CoordinatorDep) -> Thread:
        return await c.messages.thread(agent, thread_id)

    @app.post("/v1/threads/{thread_id}/replies", response_model=Thread)
    async def reply(thread_id: RowId, body: Reply, agent: AgentDep, c: CoordinatorDep) -> Thread:
        return await c.messages.reply(agent, thread_id, body)

    @app.get("/v1/inbox", response_model=list[Thread])
    async def inbox(agent: AgentDep, c: CoordinatorDep) -> list[Thread]:
        return await c.messages.inbox(agent)

    @app.get("/v1/briefing", response_model=Briefing)
    async def briefing(agent: AgentDep, c: CoordinatorDep) -> Briefing:
        return await c.briefings.brief(agent, await c.path_status(agent, None))

    @app.get("/v1/zones", response_model=list[Zone])
    async def list_zones(agent: AgentDep, c: CoordinatorDep) -> list[Zone]:
        return await c.zones.all(agent)

    @app.post("/v1/zones", response_model=Zone, status_code=201)
    async def add_zone(body: ZoneCreate, agent: AgentDep, c: CoordinatorDep) -> Zone:
        return await c.zones.add(agent, body)

    @app.delete("/v1/zones/{zone_id}", status_code=204)
    async def remove_zone(zone_id: RowId, agent: AgentDep, c: CoordinatorDep) -> Response:
        await c.zones.remove(agent, zone_id)
        return Response(status_code=204)

    @app.post("/v1/zones/allowances", status_code=204)
    async def allow_zone(body: ZoneAllowance, agent: AgentDep, c: CoordinatorDep) -> Response:
        await c.zones.allow(agent, body)
        return Response(status_code=204)

    @app.get("/v1/audit", response_model=list[AuditEntry])
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
            path=_repo_path(path) if path is not None else None,
            since=since,
            until=until,
            after_id=after_id,
            limit=limit,
        )
        return await c.journal.audit(agent, query)

    return app


async def _event_stream(
    c: Coordinator, agent: AgentRow, after: int
) -> AsyncIterator[dict[str, str]]:
    """Stored events after ``after``, then each new one as it is committed; never a gap."""
    last = after
    while True:
        signal = c.journal.event_signal(agent.workspace_id)
        batch = await c.journal.events_after(agent, last)
        for event in batch:
            last = event.id
            yield {"id": str(event.id), "event": event.type.value, "data": event.model_dump_json()}
        if not batch:
            await signal.wait()


async def _unless_disconnected(request: Request, work: Any) -> Any:
    """Run ``work``; if the client hangs up first, cancel it (a waiter must leave the line)."""
    outcome: list[Any] = []
    failure: list[Exception] = []

    async def run(cancel_scope: trio.CancelScope) -> None:
        try:
            outcome.append(await work)
        except Exception as exc:  # re-raised below, outside the nursery's exception group
            failure.append(exc)
        cancel_scope.cancel()

    async def watch(cancel_scope: trio.CancelScope) -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, nursery.cancel_scope)
        nursery.start_soon(watch, nursery.cancel_scope)
    if failure:
        raise failure[0]
    if not outcome:
        raise BadRequest("the client went away while waiting", code=ErrorCode.CLIENT_GONE)
    return outcome[0]


def _error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> JSONResponse:
    body = ErrorBody(error=code, message=message, details=details)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status)


def _validation_message(errors: list[Any]) -> tuple[ErrorCode, str]:
    parts = []
    code = ErrorCode.INVALID_REQUEST
    for error in errors:
        if error.get("type") == "json_invalid":
            return ErrorCode.MALFORMED_JSON, "the request body is not valid JSON"
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, InvalidPath):
            code = ErrorCode.INVALID_PATH
        where = ".".join(str(x) for x in error.get("loc", ()) if x != "body")
        parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return code, "; ".join(parts)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CoordinatorError)
    async def coordinator_error(request: Request, exc: CoordinatorError) -> JSONResponse:
        if exc.status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
        response = _error_response(exc.status, exc.code, exc.message, exc.details)
        if exc.details and "retry_after_s" in exc.details:
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.details["retry_after_s"])))
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        code, message = _validation_message(list(exc.errors()))
        status = 400 if code == ErrorCode.MALFORMED_JSON else 422
        return _error_response(status, code, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}
        code: str = codes.get(exc.status_code, f"http_{exc.status_code}")
        message = {
            404: f"no such endpoint: {request.method} {request.url.path}",
            405: f"{request.method} is not allowed on {request.url.path}",
        }.get(exc.status_code, str(exc.detail))
        return _error_response(exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s crashed", request.method, request.url.path)
        return _error_response(
            500, ErrorCode.INTERNAL_ERROR, "the coordinator hit an unexpected error; see its log"
        )
