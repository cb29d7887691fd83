"""The mount daemon's control socket: typed requests and answers, and how a line is framed.

``leasefs status``, ``release`` and ``umount`` (and the MCP bridge inside a mount) talk to a
running mount over a Unix socket: one JSON object per line each way. The request's ``op``
chooses its model; an answer is ``{"ok": true, ...}`` or `ControlRefusal`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

from ._base import WIRE_CONFIG, WireModel
from ._defaults import DEFAULT_BRANCH
from ._models import LeaseScope


class StatusRequest(WireModel):
    op: Literal["status"] = "status"


class ReleaseNow(BaseModel):
    """Give back these paths' leases now, with their snapshots; none named: every lease.
    ``agent``: only that agent's of this tree (None: every agent's)."""

    model_config = WIRE_CONFIG

    op: Literal["release"] = "release"
    paths: list[str] = []
    agent: str | None = None


class UnmountRequest(WireModel):
    op: Literal["umount"] = "umount"


class AddRunAgent(WireModel):
    """`leasefs run`: the process ``root_pid`` and all it starts act as ``agent`` in this
    tree (registered now, or the agent of an earlier run of that name)."""

    op: Literal["add_run_agent"] = "add_run_agent"
    agent: Annotated[str, Field(min_length=1, max_length=200)]
    tool: Annotated[str, Field(max_length=200)] = ""
    root_pid: Annotated[int, Field(gt=1)]


class RunEnded(WireModel):
    """The `leasefs run` of ``agent`` ended: give its leases back now."""

    op: Literal["run_ended"] = "run_ended"
    agent: Annotated[str, Field(min_length=1, max_length=200)]


ControlRequest = Annotated[
    StatusRequest | ReleaseNow | UnmountRequest | AddRunAgent | RunEnded,
    Field(discriminator="op"),
]
CONTROL_REQUEST: TypeAdapter[ControlRequest] = TypeAdapter(ControlRequest)


class HeldStatus(WireModel):
    path: str
    token: int
    age_s: float
    expires_in_s: float
    open_for_writing: bool  # some process holds the file open for writing right now
    quiet_s: float  # seconds since the last change to it
    state: str
    agent: str | None = None  # who in this tree holds it (a `leasefs run` agent or the mount's)


class RunAgentStatus(WireModel):
    """A `leasefs run` agent working in this tree."""

    agent: str
    agent_id: int
    tool: str
    processes: list[int]  # the `leasefs run` processes acting as it (their descendants too)


class ConflictStatus(WireModel):
    path: str
    copy_path: str | None
    version_id: int
    author: str
    at: float


class MountStatus(WireModel):
    """What ``leasefs status`` shows of one mount."""

    repo: str
    pid: int
    agent: str
    agent_id: int
    workspace: str
    coordinator: str
    coordinator_reachable: bool
    branch: str = DEFAULT_BRANCH  # the branch whose versions this mount records and applies
    lease_scope: LeaseScope = "workspace"  # whom its leases exclude
    events_connected: bool
    held: list[HeldStatus]
    waiters: dict[str, list[str]]
    pending_snapshots: int
    versions_applied: int
    refused_writes: int
    lookups_served: int  # names the kernel asked the mount for (not primed, not cached)
    conflicts: list[ConflictStatus]
    bypassers: list[str]
    run_agents: list[RunAgentStatus] = Field(default_factory=list)
    # Files granted here that another branch changed since the two met ("api.txt was
    # changed on main by alice (version 12)"), newest last.
    notices: list[str] = Field(default_factory=list)


class StatusAnswer(WireModel):
    ok: Literal[True] = True
    status: MountStatus


class Released(WireModel):
    ok: Literal[True] = True
    released: list[str]


class Done(WireModel):
    ok: Literal[True] = True


class RunAgentAdded(WireModel):
    """The agent a `leasefs run` acts as: the marker its processes carry in their
    environment, and the agent's token (for `leasefs mcp` under it)."""

    ok: Literal[True] = True
    agent: str
    agent_id: int
    token: str
    marker: str


class ControlRefusal(WireModel):
    ok: Literal[False] = False
    error: str


ControlAnswer = StatusAnswer | Released | RunAgentAdded | Done | ControlRefusal


def encode_line(message: BaseModel) -> bytes:
    """One message as the line that carries it."""
    return message.model_dump_json().encode() + b"\n"
