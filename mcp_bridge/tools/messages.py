"""Messages between agents: ask an agent, a work session's owner or the whole team, read your
inbox and answer in threads. The server also publishes the unread threads as the
``leasefs://inbox`` resource, updated as messages arrive."""

from typing import Annotated

from pydantic import Field

from leasefs.wire import Thread

from .._bridge import Bridge
from .._results import Threads


async def ask(
    bridge: Bridge,
    to: Annotated[str, Field(description="'team', 'agent:<name or id>' or 'work:<id>'.")],
    topic: str,
    question: str,
    paths: list[str] = [],  # noqa: B006 - pydantic copies defaults
) -> Thread:
    """Ask an agent, the owner of a work session, or the whole team. Answers arrive in your
    inbox (and as a notification on the leasefs://inbox resource)."""
    return await bridge.client.ask(to, topic, question, paths)


async def inbox(bridge: Bridge) -> Threads:
    """Threads with messages you have not read yet."""
    return Threads(threads=await bridge.client.inbox())


async def thread(bridge: Bridge, thread_id: int) -> Thread:
    """A whole thread, every message in order."""
    return await bridge.client.thread(thread_id)


async def reply(bridge: Bridge, thread_id: int, body: str, close: bool = False) -> Thread:
    """Answer in a thread; close it if the matter is settled."""
    return await bridge.client.reply(thread_id, body, close=close)


async def unread(bridge: Bridge) -> Threads:
    """The inbox resource's content: unread threads, read from the briefing, which (unlike
    `inbox`) marks nothing as read."""
    return Threads(threads=(await bridge.client.briefing()).unread)
