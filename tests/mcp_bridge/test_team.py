"""The team-state tools called directly with bridges against a real coordinator."""

from __future__ import annotations

from leasefs.wire import MemoryCreate
from mcp_bridge.tools import team
from tests.mcp_bridge.conftest import BridgeFactory


async def test_briefing_is_the_team_state_for_this_agent(make_bridge: BridgeFactory) -> None:
    alice, bob = await make_bridge("alice"), await make_bridge("bob")
    await alice.client.acquire(["src/app.py"], work="app")
    brief = await team.briefing(bob)
    assert brief.you.name == "bob"
    assert [(s.path, s.lease and s.lease.holder.name) for s in brief.leases] == [
        ("src/app.py", "alice")
    ]


async def test_check_names_the_holder_the_work_and_the_memories(
    make_bridge: BridgeFactory,
) -> None:
    alice, bob = await make_bridge("alice"), await make_bridge("bob")
    await alice.client.start_work("api", ["api/*.py"], "")
    await alice.client.acquire(["api/routes.py"], work="api")
    await alice.client.remember(MemoryCreate(text="routes are versioned", paths=["api/routes.py"]))
    held, free = (await team.check(bob, ["api/routes.py", "free.py"])).paths
    assert held.lease is not None and held.lease.holder.name == "alice"
    assert [w.title for w in held.overlapping_work] == ["api"]
    assert [m.text for m in held.memories] == ["routes are versioned"]
    assert held.latest_version is None and held.history == []
    assert free.lease is None and free.overlapping_work == [] and free.memories == []


async def test_switch_workspace_acts_for_the_other_team(
    make_bridge: BridgeFactory, workspace_name: str
) -> None:
    alice = await make_bridge("alice")
    first_id = alice.agent_id
    other = f"{workspace_name}-other"
    switched = await team.switch_workspace(alice, other)
    assert (switched.workspace, switched.agent) == (other, "alice")
    assert switched.agent_id == alice.agent_id != first_id
    assert (await team.briefing(alice)).workspace == other
