"""Teamwork: what agents tell each other besides leases.

Work under way and its hand-off, memories, the shared context document, threads of questions
and replies, and the briefing that sums them up for an agent starting out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..wire import (
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
)
from ._transport import Transport


class TeamworkCalls(Transport):
    """The calls about work, memories, the context, threads and the briefing."""

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
