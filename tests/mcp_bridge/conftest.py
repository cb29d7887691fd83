"""MCP sessions over stdio with the SDK's real client, and bare bridges for calling the tool
functions directly, both against a real coordinator."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from leasefs import Identity
from mcp_bridge import Bridge
from tests.helpers import CoordinatorProcess


@asynccontextmanager
async def mcp_session(
    coordinator_url: str, workspace: str, agent: str, cwd: Path, **client_options: Any
) -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "leasefs", "mcp", "--coordinator", coordinator_url, "--agent", agent],
        env={**os.environ, "LEASEFS_WORKSPACE": workspace, "LEASEFS_DATA_DIR": str(cwd / ".data")},
        cwd=cwd,
    )
    async with Client(params, read_timeout_seconds=60, **client_options) as client:
        yield client


@pytest.fixture
def connect(
    coordinator: CoordinatorProcess, workspace_name: str, tmp_path: Path
) -> Callable[..., AbstractAsyncContextManager[Client]]:
    """``async with connect("alice") as alice:`` an MCP session acting as that agent.

    A context manager entered by the test itself: the SDK client's task group must be
    entered and left by the same task.
    """

    def open_session(name: str, **client_options: Any) -> AbstractAsyncContextManager[Client]:
        cwd = tmp_path / name
        cwd.mkdir(exist_ok=True)
        return mcp_session(coordinator.url, workspace_name, name, cwd, **client_options)

    return open_session


def structured(result: Any) -> Any:
    """The structured answer of a successful tool call."""
    assert not result.is_error, result.content
    return result.structured_content


Connect = Callable[..., AbstractAsyncContextManager[Client]]


BridgeFactory = Callable[[str], Awaitable[Bridge]]


@pytest.fixture
async def make_bridge(
    coordinator: CoordinatorProcess, workspace_name: str
) -> AsyncIterator[BridgeFactory]:
    """``await make_bridge("alice")``: a connected Bridge acting as that agent, with no MCP
    transport, to call the tool functions with; every client is closed afterwards."""
    bridges: list[Bridge] = []

    async def factory(name: str) -> Bridge:
        bridge = Bridge(Identity(coordinator=coordinator.url, workspace=workspace_name, agent=name))
        bridges.append(bridge)
        await bridge.connect()
        return bridge

    try:
        yield factory
    finally:
        for bridge in bridges:
            await bridge.client.aclose()
