"""The work-session tools called directly with bridges against a real coordinator."""

from __future__ import annotations

import pytest
from mcp.server.mcpserver.exceptions import ToolError

from leasefs import LeasefsError
from mcp_bridge.tools import work
from tests.mcp_bridge.conftest import BridgeFactory


async def test_start_leases_the_files_and_reports_overlapping_work(
    make_bridge: BridgeFactory,
) -> None:
    alice, bob = await make_bridge("alice"), await make_bridge("bob")
    started = await work.start(alice, "parser", ["src/parser.py", "src/*.py"], lease=True)
    assert [lease.path for lease in started.leases] == ["src/parser.py"]  # globs are not leased
    assert alice.work_id == started.work.id
    theirs = await work.start(bob, "tokens", ["src/tokens.py"])
    assert [w.title for w in theirs.overlapping] == ["parser"]
    assert "overlaps active work of alice: 'parser'" in theirs.note
    with pytest.raises(ToolError, match=r"not started: .*alice"):
        await work.start(bob, "also the parser", ["src/parser.py"], lease=True)


async def test_park_releases_and_another_agent_resumes_and_finishes(
    make_bridge: BridgeFactory,
) -> None:
    alice, bob = await make_bridge("alice"), await make_bridge("bob")
    started = await work.start(alice, "notes", ["notes.md"], lease=True)
    parked = await work.park(alice, "half done", notes="see the todo list")
    assert parked.work is not None and parked.work.status == "parked"
    assert parked.released == ["notes.md"] and alice.work_id is None
    resumed = await work.resume(bob, started.work.id)
    assert resumed.owner.name == "bob" and resumed.progress == "half done"
    finished = await work.finish(bob, "all done", next_steps=["publish"])
    assert finished.work is not None and finished.work.handoff is not None
    assert finished.work.handoff.next_steps == ["publish"]
    assert finished.note == f"work {started.work.id} finished; 0 lease(s) released"
    assert bob.work_id is None


async def test_finish_without_a_session_says_how_to_start_one(
    make_bridge: BridgeFactory,
) -> None:
    alice = await make_bridge("alice")
    with pytest.raises(ToolError, match="no work session: start one with leasefs_start"):
        await work.finish(alice, "nothing")


async def test_inspect_and_cancel_by_its_owner_only(make_bridge: BridgeFactory) -> None:
    alice, bob = await make_bridge("alice"), await make_bridge("bob")
    started = await work.start(alice, "api", ["api/routes.py"], lease=True)
    inspected = await work.inspect(bob, started.work.id)
    assert inspected.work.title == "api"
    assert [s.path for s in inspected.leases] == ["api/routes.py"]
    with pytest.raises(LeasefsError, match="only its owner"):
        await work.cancel(bob, started.work.id)
    cancelled = await work.cancel(alice, started.work.id)
    assert cancelled.status == "cancelled" and alice.work_id is None
