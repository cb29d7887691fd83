"""The typed client: the one way our code talks to the coordinator.

Built on ``httpx.AsyncClient``, which runs under trio (the mount) and asyncio (the MCP SDK)
alike. Every URL is built here; the plumbing under the calls (`_transport.Transport`) turns
every error body into a typed exception and every transport failure into
`CoordinatorUnavailable`.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
from anyio.streams.memory import MemoryObjectReceiveStream
from httpx_sse import ServerSentEvent, aconnect_sse

from ..wire import (
    DEFAULT_BRANCH,
    LEASE_TTL_S,
    MAX_JSON_BYTES,
    AgentInfo,
    AgentRegistration,
    Ask,
    AuditEntry,
    BlobInfo,
    Briefing,
    ConflictReport,
    ContextDoc,
    ContextUpdate,
    ErrorCode,
    Event,
    EventsHead,
    Handoff,
    Lease,
    LeaseGrant,
    LeaseRef,
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
    Zone,
    ZoneAllowance,
    ZoneCreate,
)
from ._exceptions import (
    CoordinatorUnavailable,
    LeasefsError,
    PayloadTooLarge,
)
from ._hashing import CHUNK_SIZE, _sha256_of_fd, _small_content_of_fd, sha256_of_file
from ._transport import (
    _EVENTS_BROKE,
    _UNREACHABLE,
    Transport,
    _converted,
    _rejection,
    httpx_errors_as_ours,
)

_JSON_MARGIN_BYTES = 1024  # headroom under the coordinator's JSON limit, for estimates
_WAIT_MARGIN_S = 10.0


def _inline_json_bytes(data: bytes) -> int:
    """What one inline content adds to a JSON body: its key, and its bytes in base64."""
    return 64 + 6 + 4 * math.ceil(len(data) / 3)


class Client(Transport):
    """A connection to one coordinator, acting as one agent once registered.

    Use as ``async with Client(url) as client:``; `register` (or a ``token``) makes it an agent.
    """

    # -- workspaces and agents --------------------------------------------------------------

    async def create_workspace(self, name: str) -> Workspace:
        return await self._call(Workspace, "POST", "/workspaces", body=WorkspaceCreate(name=name))

    async def ensure_workspace(self, name: str) -> Workspace:
        """Create the workspace unless it exists; either way return it."""
        try:
            return await self.create_workspace(name)
        except LeasefsError as exc:
            if getattr(exc, "code", None) != "workspace_exists":
                raise
        return await self._call(Workspace, "GET", f"/workspaces/{name}")

    async def register(
        self, workspace: str, name: str, *, host: str = "", tool: str = ""
    ) -> Registered:
        """Join a workspace as an agent; this client then acts as that agent."""
        registration = AgentRegistration(workspace=workspace, name=name, host=host, tool=tool)
        registered = await self._call(Registered, "POST", "/agents", body=registration)
        self.token = registered.token
        self.agent = registered.agent
        self.workspace = registered.workspace
        return registered

    async def whoami(self) -> AgentInfo:
        return await self._call(AgentInfo, "GET", "/agents/me")

    async def leave(self) -> None:
        """Leave the workspace: every lease is released and the token retired."""
        await self._request("DELETE", "/agents/me")

    # -- leases -----------------------------------------------------------------------------

    async def acquire(
        self,
        paths: Sequence[str],
        *,
        ttl_s: float = LEASE_TTL_S,
        wait_s: float = 0.0,
        work: str | None = None,
        branch: str = DEFAULT_BRANCH,
    ) -> LeaseGrant:
        """Take exclusive leases on all ``paths`` or none; raises `LeaseHeld` if contended.

        With ``wait_s`` the coordinator queues the request (first come, first served) and
        answers as soon as every path is free, or with `LeaseHeld` after ``wait_s``.
        """
        request = LeaseRequest(
            paths=list(paths), ttl_s=ttl_s, wait_s=wait_s, work=work, branch=branch
        )
        return await self._call(
            LeaseGrant,
            "POST",
            "/leases/acquire",
            body=request,
            request_timeout=max(self._timeout, wait_s + _WAIT_MARGIN_S),
        )

    async def renew(self, ttl_s: float | None = None) -> RenewResult:
        """Renew every live lease this agent holds; the ones missing from the answer are lost."""
        return await self._call(
            RenewResult, "POST", "/leases/renew", body=RenewRequest(ttl_s=ttl_s)
        )

    async def release(self, leases: Iterable[Lease | LeaseRef]) -> ReleaseResult:
        refs = [LeaseRef(path=lease.path, token=lease.token) for lease in leases]
        return await self._call(
            ReleaseResult, "POST", "/leases/release", body=ReleaseRequest(leases=refs)
        )

    async def holders(self, paths: Sequence[str] | None = None) -> list[PathStatus]:
        """Who holds and who waits for ``paths`` (every leased or awaited path if None)."""
        params = [("path", p) for p in paths] if paths else None
        return await self._call_list(PathStatus, "GET", "/leases", params=params)

    # -- blobs and versions -----------------------------------------------------------------

    async def has_blob(self, digest: str) -> bool:
        try:
            await self._request("HEAD", f"/blobs/{digest}")
        except LeasefsError as exc:
            if getattr(exc, "status", None) == 404:
                return False
            raise
        return True

    async def _check_blob_size(self, size: int) -> None:
        """Refuse a blob over the coordinator's limit before streaming it: refused halfway,
        the upload would end as a broken connection rather than a clear error."""
        if self._limits is None:
            self._limits = (await self.health()).limits
        if self._limits is not None and size > self._limits.max_blob_bytes:
            limit = self._limits.max_blob_bytes
            raise PayloadTooLarge(
                f"the blob is {size} bytes, over this coordinator's limit of {limit} bytes "
                "(leasefs serve --max-blob-bytes)",
                status=413,
                code=ErrorCode.BLOB_TOO_LARGE,
                details={"max_bytes": limit, "size": size},
            )

    async def upload_blob(self, data: bytes) -> BlobInfo:
        digest = hashlib.sha256(data).hexdigest()
        return await self._call(BlobInfo, "PUT", f"/blobs/{digest}", content=data)

    async def upload_blob_file(self, path: str | os.PathLike[str]) -> BlobInfo:
        """Upload a file's content, streamed in chunks; skipped if the coordinator has it."""
        digest, size = await anyio.to_thread.run_sync(sha256_of_file, path)
        if await self.has_blob(digest):
            return BlobInfo(hash=digest, size=size)
        await self._check_blob_size(size)

        async def chunks() -> AsyncIterator[bytes]:
            async with await anyio.open_file(path, "rb") as f:
                while chunk := await f.read(CHUNK_SIZE):
                    yield chunk

        response = await self._request(
            "PUT", f"/blobs/{digest}", content=chunks(), request_timeout=max(self._timeout, 600.0)
        )
        return BlobInfo.model_validate_json(response.content)

    async def upload_blob_fd(self, fd: int) -> BlobInfo:
        """Upload what an open file holds, read with pread (the descriptor's offset untouched).

        A small file is sent at once: one PUT costs what asking first whether the coordinator
        has it would, and a blob it has is stored once. A bigger one is asked about first and
        streamed only if missing.
        """
        small = await anyio.to_thread.run_sync(_small_content_of_fd, fd)
        if small is not None:
            await self._check_blob_size(len(small))
            return await self.upload_blob(small)
        digest, size = await anyio.to_thread.run_sync(_sha256_of_fd, fd)
        if await self.has_blob(digest):
            return BlobInfo(hash=digest, size=size)
        await self._check_blob_size(size)

        async def chunks() -> AsyncIterator[bytes]:
            offset = 0
            while chunk := await anyio.to_thread.run_sync(os.pread, fd, CHUNK_SIZE, offset):
                offset += len(chunk)
                yield chunk

        response = await self._request(
            "PUT", f"/blobs/{digest}", content=chunks(), request_timeout=max(self._timeout, 600.0)
        )
        return BlobInfo.model_validate_json(response.content)

    @asynccontextmanager
    async def open_blob(self, digest: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """Stream a blob: ``async with client.open_blob(h) as chunks: async for c in chunks``."""
        request = self._http.build_request("GET", f"/blobs/{digest}", headers=self._headers())
        with httpx_errors_as_ours(_UNREACHABLE, self.base_url):
            response = await self._http.send(request, stream=True)
        try:
            if response.is_error:
                await response.aread()
                raise _rejection(response)
            yield _converted(response.aiter_bytes(CHUNK_SIZE), self.base_url)
        finally:
            await response.aclose()

    async def read_blob(self, digest: str) -> bytes:
        parts = []
        async with self.open_blob(digest) as chunks:
            async for chunk in chunks:
                parts.append(chunk)
        return b"".join(parts)

    async def download_blob(self, digest: str, dest: str | os.PathLike[str]) -> int:
        """Write a blob to ``dest`` chunk by chunk, checking its hash; returns its size."""
        hasher = hashlib.sha256()
        size = 0
        async with self.open_blob(digest) as chunks, await anyio.open_file(dest, "wb") as f:
            async for chunk in chunks:
                hasher.update(chunk)
                await f.write(chunk)
                size += len(chunk)
        if hasher.hexdigest() != digest:
            raise LeasefsError(f"blob {digest} arrived with different content; {dest} is not valid")
        return size

    async def create_version(self, version: VersionCreate) -> Version:
        return await self._call(Version, "POST", "/versions", body=version)

    async def create_versions(
        self, versions: Sequence[VersionCreate], contents: Mapping[str, bytes] | None = None
    ) -> list[Version]:
        """Record ``versions`` all at once (or none: `StaleToken` if one lease is no longer
        current), with the contents not uploaded as blobs, keyed by their sha256.

        A content over the coordinator's blob limit raises `PayloadTooLarge`; if together
        they would outgrow its JSON body limit, the largest are uploaded as blobs first.
        """
        inline = dict(contents or {})
        for data in inline.values():
            await self._check_blob_size(len(data))
        # Built without validating again: the versions are models already, and validating
        # would decode every content from base64 only for it to be encoded once more.
        bare = VersionBatch.model_construct(versions=list(versions), contents={})
        size = len(bare.model_dump_json()) + sum(_inline_json_bytes(d) for d in inline.values())
        budget = self._limits.max_json_bytes if self._limits else MAX_JSON_BYTES
        for digest in sorted(inline, key=lambda d: len(inline[d]), reverse=True):
            if size <= budget - _JSON_MARGIN_BYTES:
                break
            data = inline.pop(digest)
            await self.upload_blob(data)
            size -= _inline_json_bytes(data)
        batch = VersionBatch.model_construct(versions=list(versions), contents=inline)
        return await self._call_list(Version, "POST", "/versions/batch", body=batch)

    async def latest_version(self, path: str, *, branch: str = DEFAULT_BRANCH) -> Version | None:
        try:
            return await self._call(
                Version, "GET", "/versions/latest", params={"path": path, "branch": branch}
            )
        except LeasefsError as exc:
            if getattr(exc, "code", None) == "no_version":
                return None
            raise

    async def history(
        self, path: str, *, branch: str = DEFAULT_BRANCH, limit: int = 100
    ) -> list[Version]:
        params = {"path": path, "branch": branch, "limit": limit}
        return await self._call_list(Version, "GET", "/versions", params=params)

    # -- team knowledge -----------------------------------------------------------------------

    async def briefing(self) -> Briefing:
        return await self._call(Briefing, "GET", "/briefing")

    async def start_work(
        self, title: str, paths: Sequence[str] = (), plan: str = ""
    ) -> WorkStarted:
        body = WorkStart(title=title, paths=list(paths), plan=plan)
        return await self._call(WorkStarted, "POST", "/work", body=body)

    async def work(self, work_id: int) -> Work:
        return await self._call(Work, "GET", f"/work/{work_id}")

    async def list_work(self, statuses: Sequence[str] = ("active", "parked")) -> list[Work]:
        return await self._call_list(Work, "GET", "/work", params=[("status", s) for s in statuses])

    async def finish_work(self, work_id: int, handoff: Handoff) -> Work:
        return await self._call(Work, "POST", f"/work/{work_id}/finish", body=handoff)

    async def park_work(self, work_id: int, progress: str, notes: str = "") -> Work:
        body = WorkPark(progress=progress, notes=notes)
        return await self._call(Work, "POST", f"/work/{work_id}/park", body=body)

    async def resume_work(self, work_id: int) -> Work:
        return await self._call(Work, "POST", f"/work/{work_id}/resume")

    async def cancel_work(self, work_id: int) -> Work:
        return await self._call(Work, "POST", f"/work/{work_id}/cancel")

    async def remember(self, memory: MemoryCreate) -> Memory:
        return await self._call(Memory, "POST", "/memories", body=memory)

    async def recall(
        self, query: str | None = None, paths: Sequence[str] = (), limit: int = 20
    ) -> list[Memory]:
        params: list[tuple[str, Any]] = [("path", p) for p in paths] + [("limit", limit)]
        if query:
            params.append(("query", query))
        return await self._call_list(Memory, "GET", "/memories", params=params)

    async def forget(self, memory_id: int) -> None:
        await self._request("DELETE", f"/memories/{memory_id}")

    async def context(self) -> ContextDoc:
        return await self._call(ContextDoc, "GET", "/context")

    async def update_context(self, text: str, expected_version: int) -> ContextDoc:
        body = ContextUpdate(text=text, expected_version=expected_version)
        return await self._call(ContextDoc, "PUT", "/context", body=body)

    async def ask(self, to: str, topic: str, question: str, paths: Sequence[str] = ()) -> Thread:
        body = Ask(to=to, topic=topic, question=question, paths=list(paths))
        return await self._call(Thread, "POST", "/threads", body=body)

    async def inbox(self) -> list[Thread]:
        return await self._call_list(Thread, "GET", "/inbox")

    async def thread(self, thread_id: int) -> Thread:
        return await self._call(Thread, "GET", f"/threads/{thread_id}")

    async def reply(self, thread_id: int, body: str, *, close: bool = False) -> Thread:
        return await self._call(
            Thread, "POST", f"/threads/{thread_id}/replies", body=Reply(body=body, close=close)
        )

    # -- protected zones ----------------------------------------------------------------------

    async def zones(self) -> list[Zone]:
        return await self._call_list(Zone, "GET", "/zones")

    async def add_zone(self, glob: str, level: str, reason: str) -> Zone:
        body = ZoneCreate(glob=glob, level=level, reason=reason)  # type: ignore[arg-type]
        return await self._call(Zone, "POST", "/zones", body=body)

    async def remove_zone(self, zone_id: int) -> None:
        await self._request("DELETE", f"/zones/{zone_id}")

    async def allow_zone(self, path: str, agent: str) -> None:
        """Let agents named ``agent`` change ``path`` (a path or glob) in confirm zones."""
        await self._request("POST", "/zones/allowances", body=ZoneAllowance(path=path, agent=agent))

    # -- events and audit -------------------------------------------------------------------

    @asynccontextmanager
    async def open_events(self, after: int | None = None) -> AsyncIterator[EventStream]:
        """Follow the workspace's event stream from just after event id ``after``.

        ``async with client.open_events(after=last) as events: async for event in events``.
        One connection: when it drops, iteration raises `CoordinatorUnavailable`; open again
        with ``events.last_id`` and nothing is missed. Leaving the block closes the stream.
        """
        # Unbounded, so the pump never awaits outside the SSE generators: cancellation then
        # always lands inside them and unwinds them (trio warns about abandoned generators).
        send, receive = anyio.create_memory_object_stream[Event](max_buffer_size=math.inf)
        stream = EventStream(receive, after)

        async def pump() -> None:
            async with send:
                try:
                    async for event in self._event_source(after):
                        send.send_nowait(event)
                except LeasefsError as exc:
                    stream.error = exc

        try:
            with receive:  # closed only once the pump has stopped, so it never sends into a void
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(pump)
                    try:
                        yield stream
                    finally:
                        tasks.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The pump never raises, so the group holds what the caller's block raised.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise

    async def _event_source(self, after: int | None) -> AsyncIterator[Event]:
        headers = self._headers()
        if after is not None:
            headers["Last-Event-ID"] = str(after)
        timeout = httpx.Timeout(self._timeout, read=None)
        with httpx_errors_as_ours(_EVENTS_BROKE, self.base_url):
            async with aconnect_sse(
                self._http, "GET", "/events", headers=headers, timeout=timeout
            ) as source:
                if source.response.is_error:
                    await source.response.aread()
                    raise _rejection(source.response)
                async for sse in source.aiter_sse():
                    event = _event_from_sse(sse)
                    if event is not None:
                        yield event
        raise CoordinatorUnavailable(
            f"the coordinator at {self.base_url} closed the event stream", url=self.base_url
        )

    async def events_head(self) -> int:
        """The id of the newest event in the workspace (0 if none)."""
        return (await self._call(EventsHead, "GET", "/events/head")).last_id

    async def report_conflict(self, report: ConflictReport) -> None:
        await self._request("POST", "/conflicts", body=report)

    async def audit(
        self,
        *,
        agent_id: int | None = None,
        path: str | None = None,
        since: float | None = None,
        until: float | None = None,
        after_id: int | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        params: dict[str, Any] = {"limit": limit}
        for key, value in (
            ("agent_id", agent_id),
            ("path", path),
            ("since", since),
            ("until", until),
            ("after_id", after_id),
        ):
            if value is not None:
                params[key] = value
        return await self._call_list(AuditEntry, "GET", "/audit", params=params)


class EventStream:
    """Events as they arrive; ``last_id`` is where to resume after a cut."""

    def __init__(self, receive: MemoryObjectReceiveStream[Event], after: int | None) -> None:
        self._receive = receive
        self.last_id = after
        self.error: LeasefsError | None = None

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        try:
            event = await self._receive.receive()
        except anyio.EndOfStream:
            if self.error is not None:
                raise self.error from None
            raise StopAsyncIteration from None
        self.last_id = event.id
        return event


def _event_from_sse(sse: ServerSentEvent) -> Event | None:
    if not sse.data:
        return None
    return Event.model_validate_json(sse.data)
