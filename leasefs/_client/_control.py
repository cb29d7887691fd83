"""Talking to a running mount daemon: how `leasefs status`, `release` and `umount` reach it.

One JSON line each way (`leasefs.wire` declares the messages) over the mount's Unix socket;
the daemon's side is `leasefs._mount._control`. Blocking: call from a worker thread in async
code.
"""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from ..wire import (
    AddRunAgent,
    ControlAnswer,
    ControlRefusal,
    ControlRequest,
    Done,
    MountStatus,
    Released,
    ReleaseNow,
    RunAgentAdded,
    RunEnded,
    StatusAnswer,
    StatusRequest,
    UnmountRequest,
    encode_line,
)

_ANSWER: TypeAdapter[ControlAnswer] = TypeAdapter(ControlAnswer)


class ControlError(Exception):
    """The mount daemon could not be reached or refused the request."""


def _call(path: Path, request: ControlRequest, timeout: float) -> ControlAnswer:
    """Send one request to a mount daemon and return its answer (blocking)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(encode_line(request))
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        raise ControlError(f"cannot reach the mount daemon at {path}: {exc}") from exc
    if not data:
        raise ControlError(f"the mount daemon at {path} closed the connection without answering")
    try:
        answer = _ANSWER.validate_json(data)
    except ValidationError as exc:
        raise ControlError(f"the mount daemon at {path} answered nonsense: {exc}") from exc
    if isinstance(answer, ControlRefusal):
        raise ControlError(answer.error)
    return answer


def mount_status(path: Path, timeout: float = 30.0) -> MountStatus:
    """What the mount behind control socket ``path`` holds and knows."""
    answer = _call(path, StatusRequest(), timeout)
    if not isinstance(answer, StatusAnswer):
        raise ControlError(f"the mount daemon at {path} did not answer with its status")
    return answer.status


def release_now(
    path: Path,
    paths: list[str] | None = None,
    timeout: float = 120.0,
    *,
    agent: str | None = None,
) -> list[str]:
    """Have the mount give back ``paths`` (all if None) now, with snapshots; the released.
    ``agent``: only that agent's leases (in a tree shared with `leasefs run` agents)."""
    answer = _call(path, ReleaseNow(paths=paths or [], agent=agent), timeout)
    if not isinstance(answer, Released):
        raise ControlError(f"the mount daemon at {path} did not say what it released")
    return answer.released


def add_run_agent(path: Path, request: AddRunAgent, timeout: float = 60.0) -> RunAgentAdded:
    """Have the mount take ``request.root_pid`` and its descendants as ``request.agent``."""
    answer = _call(path, request, timeout)
    if not isinstance(answer, RunAgentAdded):
        raise ControlError(f"the mount daemon at {path} did not take the agent")
    return answer


def end_run(path: Path, agent: str, timeout: float = 120.0) -> list[str]:
    """Tell the mount a `leasefs run` of ``agent`` ended; the leases it gave back."""
    answer = _call(path, RunEnded(agent=agent), timeout)
    if not isinstance(answer, Released):
        raise ControlError(f"the mount daemon at {path} did not say what it released")
    return answer.released


def unmount_now(path: Path, timeout: float = 120.0) -> None:
    """Ask the mount to release everything and unmount; returns once it has agreed to."""
    answer = _call(path, UnmountRequest(), timeout)
    if not isinstance(answer, Done):
        raise ControlError(f"the mount daemon at {path} did not agree to unmount")
