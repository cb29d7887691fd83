"""The memory and context-document tools called directly with bridges against a real
coordinator."""

from __future__ import annotations

import pytest

from leasefs import LeasefsError
from mcp_bridge.tools import memory
from tests.mcp_bridge.conftest import BridgeFactory


async def test_a_memory_recorded_by_one_is_recalled_and_forgotten_by_another(
    make_bridge: BridgeFactory,
) -> None:
    alice, bob = await make_bridge("alice"), await make_bridge("bob")
    noted = await memory.remember(
        alice, "The cache is keyed by tenant", paths=["cache.py"], tags=["cache"], ttl_days=30
    )
    assert noted.author.name == "alice" and noted.expires_at is not None
    assert [m.id for m in (await memory.recall(bob, "tenant")).memories] == [noted.id]
    assert [m.id for m in (await memory.recall(bob, paths=["cache.py"])).memories] == [noted.id]
    assert (await memory.recall(bob, paths=["other.py"])).memories == []
    assert (await memory.forget(bob, noted.id)).memory_id == noted.id
    assert (await memory.recall(alice, "tenant")).memories == []


async def test_the_context_document_is_replaced_only_from_its_current_version(
    make_bridge: BridgeFactory,
) -> None:
    alice, bob = await make_bridge("alice"), await make_bridge("bob")
    doc = await memory.context(alice)
    updated = await memory.context_update(alice, "# Rules", doc.version)
    assert updated.version == doc.version + 1
    with pytest.raises(LeasefsError, match=f"version {updated.version}"):
        await memory.context_update(bob, "# Mine", doc.version)
    now = await memory.context(bob)
    assert (now.text, now.version) == ("# Rules", updated.version)
    assert now.updated_by is not None and now.updated_by.name == "alice"
