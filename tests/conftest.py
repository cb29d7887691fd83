"""Fixtures shared by every test: real coordinators on loopback, agents talking to them."""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from leasefs import Client
from tests.helpers import CoordinatorProcess

_names = itertools.count(1)
_SOURCE = Path(__file__).resolve().parent.parent


def _untracked_in_source() -> set[str]:
    listed = subprocess.run(
        ["git", "-C", str(_SOURCE), "ls-files", "--others", "--exclude-standard"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return set(listed.stdout.splitlines()) if listed.returncode == 0 else set()


@pytest.fixture(scope="session", autouse=True)
def source_checkout_untouched() -> Iterator[None]:
    """Fail the run if a test left a new file in the source checkout (a ``leasefs join`` or
    ``install`` run from the wrong directory writes its settings into our own repository)."""
    before = _untracked_in_source()
    yield
    # New files in our own source folders are the developer's, written while tests run.
    ours = ("coordinator/", "docs/", "leasefs/", "mcp_bridge/", "scripts/", "tests/")
    left = sorted(p for p in _untracked_in_source() - before if not p.startswith(ours))
    assert not left, f"tests left files in the source checkout {_SOURCE}: {left}"


@pytest.fixture(scope="session")
def coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoordinatorProcess]:
    """One coordinator shared by the session; tests isolate themselves by workspace."""
    server = CoordinatorProcess(
        tmp_path_factory.mktemp("coordinator"), "--max-blob-bytes", "300000000"
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
        print("".join(server.output[-200:]))  # shown by pytest when a test failed


@pytest.fixture
def fresh_coordinator(tmp_path: Path) -> Iterator[CoordinatorProcess]:
    """A coordinator of the test's own, for tests that stop, kill or restart it."""
    server = CoordinatorProcess(tmp_path / "coordinator-data")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def workspace_name() -> str:
    return f"ws-{os.getpid()}-{next(_names)}"


AgentFactory = Callable[..., Awaitable[Client]]


@pytest.fixture
async def make_agent(
    coordinator: CoordinatorProcess, workspace_name: str
) -> AsyncIterator[AgentFactory]:
    """Register agents into the test's workspace; every client is closed afterwards."""
    clients: list[Client] = []

    async def factory(
        name: str = "agent", *, url: str | None = None, workspace: str | None = None
    ) -> Client:
        client = Client(url or coordinator.url, timeout=30)  # generous: CI machines are shared
        clients.append(client)
        ws = workspace or workspace_name
        await client.ensure_workspace(ws)
        await client.register(ws, f"{name}", host="test-host", tool="pytest")
        return client

    try:
        yield factory
    finally:
        for client in clients:
            await client.aclose()
