"""The agents working in one mounted tree: the mount's own, and each `leasefs run` agent.

Each has its own registration (token), its own lease keeper and so its own leases: two agents
in one tree hold files exactly as two mounts do (EBUSY, waits, recalls), and each one's
releases record versions as that agent. They share the bytes, so a hand-off between them
moves nothing: the applier knows every local agent's versions are here already.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._client import Client
from ._keeper import LeaseKeeper
from ._process_agents import ProcessAgents

__all__ = ["LocalAgent", "LocalAgents"]


@dataclass(frozen=True)
class LocalAgent:
    name: str
    agent_id: int
    token: str
    client: Client
    keeper: LeaseKeeper
    tool: str


class LocalAgents:
    """Who in this tree is which agent, and each agent's keeper."""

    def __init__(self, own: LocalAgent, processes: ProcessAgents) -> None:
        self.own = own
        self.processes = processes
        self._runs: dict[str, LocalAgent] = {}

    def all(self) -> list[LocalAgent]:
        return [self.own, *self._runs.values()]

    def named(self, name: str) -> LocalAgent | None:
        return self.own if name == self.own.name else self._runs.get(name)

    def add(self, agent: LocalAgent) -> None:
        self._runs[agent.name] = agent

    def keeper_for(self, pid: int | None) -> LeaseKeeper:
        """The keeper of the agent process `pid` acts for (None: unknown, the mount's own)."""
        if pid is None or not self._runs:
            return self.own.keeper
        name = self.processes.agent_of(pid)
        run = self._runs.get(name) if name is not None else None
        return run.keeper if run is not None else self.own.keeper

    def is_acquiring(self, path: str) -> bool:
        return any(a.keeper.leases.is_acquiring(path) for a in self.all())

    def recall(self, path: str, token: int) -> None:
        """A recall of one of this tree's leases: only the keeper holding ``token`` acts."""
        for agent in self.all():
            agent.keeper.recall(path, token)
