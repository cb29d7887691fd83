"""The assembly: every tool function served under its name, without its bridge parameter, and
coordinator refusals turned into tool errors, without any MCP transport."""

from __future__ import annotations

import pytest
from mcp.server.mcpserver.exceptions import ToolError

from leasefs import Identity
from mcp_bridge import create_server
from mcp_bridge._server import TOOLS, _bind, _refusals_as_tool_errors
from mcp_bridge.tools import leases, team
from tests.helpers import CoordinatorProcess
from tests.mcp_bridge.conftest import BridgeFactory


async def test_every_tool_is_listed_by_its_function_name_without_the_bridge(
    coordinator: CoordinatorProcess, workspace_name: str
) -> None:
    identity = Identity(coordinator=coordinator.url, workspace=workspace_name, agent="alice")
    listed = await create_server(identity).list_tools()
    assert [t.name for t in listed] == [f"leasefs_{fn.__name__}" for fn in TOOLS]
    assert len(listed) == 21
    assert not [t.name for t in listed if "bridge" in t.input_schema.get("properties", {})]
    [check] = [t for t in listed if t.name == "leasefs_check"]
    assert check.input_schema["required"] == ["paths"] and check.output_schema is not None
    assert check.description == (  # continuation lines as they always read (8 spaces)
        "For each path: who holds it and who waits, its latest versions, work sessions that\n"
        "        touch it and memories about it. Changes nothing."
    )


async def test_refusals_and_refused_arguments_become_tool_errors(
    make_bridge: BridgeFactory,
) -> None:
    alice, bob = await make_bridge("alice"), await make_bridge("bob")
    await leases.lease_acquire(alice, ["src/a.py"])
    acquire = _refusals_as_tool_errors(_bind(leases.lease_acquire, bob))
    with pytest.raises(ToolError, match="alice"):
        await acquire(paths=["src/a.py"])
    with pytest.raises(ToolError, match=r"^invalid arguments: paths\.0: .*'\.\.'"):
        await acquire(paths=["../etc/passwd"])
    briefing = _refusals_as_tool_errors(_bind(team.briefing, bob))
    assert (await briefing()).you.name == "bob"
