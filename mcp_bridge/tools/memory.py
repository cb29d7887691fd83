"""The team's memory and the project's context document: knowledge that outlives a session.
The document is replaced by compare-and-set, so no agent overwrites an update it never read."""

from typing import Annotated

from pydantic import Field

from leasefs.wire import ContextDoc, Memory, MemoryCreate

from .._bridge import Bridge
from .._results import Forgotten, Memories


async def remember(
    bridge: Bridge,
    text: str,
    paths: list[str] = [],  # noqa: B006 - pydantic copies defaults
    tags: list[str] = [],  # noqa: B006
    ttl_days: Annotated[float | None, Field(gt=0, le=3650)] = None,
) -> Memory:
    """Record a piece of knowledge for the team, about some paths, optionally expiring."""
    return await bridge.client.remember(
        MemoryCreate(text=text, paths=paths, tags=tags, ttl_days=ttl_days)
    )


async def forget(bridge: Bridge, memory_id: int) -> Forgotten:
    """Remove a memory that is wrong or obsolete."""
    await bridge.client.forget(memory_id)
    return Forgotten(memory_id=memory_id)


async def recall(bridge: Bridge, query: str = "", paths: list[str] = []) -> Memories:  # noqa: B006
    """Search the team's memories (full text), optionally only those about some paths.
    Memories marked stale describe files that changed a lot since."""
    return Memories(memories=await bridge.client.recall(query or None, paths))


async def context(bridge: Bridge) -> ContextDoc:
    """The long-term project document (conventions, architecture, decisions)."""
    return await bridge.client.context()


async def context_update(
    bridge: Bridge,
    text: Annotated[str, Field(description="The whole new document.")],
    expected_version: Annotated[
        int, Field(description="The version you read; refused if it moved on since.")
    ],
) -> ContextDoc:
    """Replace the context document, unless someone updated it since you read it."""
    return await bridge.client.update_context(text, expected_version)
