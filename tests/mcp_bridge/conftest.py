"""MCP sessions over stdio with the SDK's real client, against a real coordinator."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

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
