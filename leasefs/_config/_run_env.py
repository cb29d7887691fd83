"""The environment `leasefs run` gives the command it starts, and reading it back.

``LEASEFS_RUN`` is the marker the mount tells the run's processes by (`_mount._process_agents`);
the others let a `leasefs mcp` or `leasefs status` started under the run act as its agent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

RUN_MARKER_ENV = "LEASEFS_RUN"
AGENT_ENV = "LEASEFS_RUN_AGENT"
TOKEN_ENV = "LEASEFS_RUN_TOKEN"
REPO_ENV = "LEASEFS_RUN_REPO"


@dataclass(frozen=True)
class RunEnvironment:
    """Who a process started under `leasefs run` acts as, in which mounted repository."""

    marker: str
    agent: str
    token: str
    repo: str  # the mounted repository's real path

    def variables(self) -> dict[str, str]:
        return {
            RUN_MARKER_ENV: self.marker,
            AGENT_ENV: self.agent,
            TOKEN_ENV: self.token,
            REPO_ENV: self.repo,
        }

    @classmethod
    def current(cls, environ: Mapping[str, str] = os.environ) -> RunEnvironment | None:
        """The run this process is under, if any (all four variables set)."""
        values = [
            environ.get(name, "") for name in (RUN_MARKER_ENV, AGENT_ENV, TOKEN_ENV, REPO_ENV)
        ]
        if not all(values):
            return None
        return cls(*values)
