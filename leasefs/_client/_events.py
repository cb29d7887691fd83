"""Events: the workspace's stream of what happens, and its record.

`open_events` follows the server-sent events through a task that pumps them into an
`EventStream`, so a connection that breaks ends the iteration with `CoordinatorUnavailable`
and `EventStream.last_id` says where to resume. Conflicts reported and the audit log are here
too: both are about what happened.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
from anyio.streams.memory import MemoryObjectReceiveStream
from httpx_sse import ServerSentEvent, aconnect_sse

from ..wire import AuditEntry, ConflictReport, Event, EventsHead
from ._exceptions import CoordinatorUnavailable, LeasefsError
from ._transport import _EVENTS_BROKE, Transport, _rejection, httpx_errors_as_ours


class EventCalls(Transport):
    """The calls about events, conflicts and the audit log."""

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
