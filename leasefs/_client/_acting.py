"""Who a command acts as: the mount around the working directory, or an agent of its own.

Inside a mounted repository, `leasefs mcp` and `leasefs zone …` act as that mount's agent
(same token, same leases). Elsewhere they use the configured coordinator (or the embedded
one) and the repository's workspace, and register an agent for themselves.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from .._config import (
    RunEnvironment,
    _registry,
    default_agent_name,
    default_workspace,
    repository_of,
    resolve,
)
from ._client import Client
from ._embedded import resolve_coordinator_url
from ._exceptions import LeasefsError


@dataclass
class Identity:
    coordinator: str
    workspace: str
    agent: str
    token: str | None = None
    repo: Path | None = None
    mount_socket: Path | None = None


def _mount_containing(path: Path) -> _registry.MountRecord | None:
    real = os.path.realpath(path)
    for record in _registry.all_records():
        if (real == record.repo or real.startswith(record.repo + "/")) and _registry.process_alive(
            record.pid
        ):
            return record
    return None


def resolve_identity(cwd: Path, coordinator: str | None, agent: str | None) -> Identity:
    """Who this MCP session acts as: the mount around ``cwd``, or a new agent."""
    record = _mount_containing(cwd)
    if record is not None and coordinator in (None, record.coordinator):
        run = RunEnvironment.current()
        if run is not None and run.repo == record.repo:  # under `leasefs run`: its agent
            return Identity(
                coordinator=record.coordinator, workspace=record.workspace, agent=run.agent,
                token=run.token, repo=Path(record.repo), mount_socket=Path(record.socket),
            )  # fmt: skip
        return Identity(
            coordinator=record.coordinator, workspace=record.workspace, agent=record.agent,
            token=record.token, repo=Path(record.repo), mount_socket=Path(record.socket),
        )  # fmt: skip
    repo = repository_of(cwd) or cwd
    return Identity(
        coordinator=resolve_coordinator_url(coordinator, repo),
        workspace=resolve("workspace", None, repo) or default_workspace(repo),
        agent=agent or resolve("agent", None, repo) or default_agent_name(),
        token=resolve("token", None, repo),
        repo=repo,
    )


@asynccontextmanager
async def acting_client(identity: Identity, tool: str) -> AsyncIterator[Client]:
    """A client acting as ``identity``; an agent registered just for this leaves at the end."""
    async with Client(identity.coordinator, identity.token) as client:
        if identity.token:
            client.agent = await client.whoami()
            client.workspace = identity.workspace
            yield client
            return
        await client.join_workspace(
            identity.workspace,
            identity.agent,
            tool=tool,
        )
        try:
            yield client
        finally:
            with suppress(LeasefsError):
                await client.leave()
