"""Fixtures shared by every test: real coordinators on loopback, agents talking to them."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from leasefs import Client
from tests.helpers import CoordinatorProcess

_names = itertools.count(1)


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
