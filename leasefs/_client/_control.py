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
    ControlAnswer,
    ControlRefusal,
    ControlRequest,
    Done,
    MountStatus,
    Released,
    ReleaseNow,
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


def release_now(path: Path, paths: list[str] | None = None, timeout: float = 120.0) -> list[str]:
    """Have the mount give back ``paths`` (all if None) now, with snapshots; the released."""
    answer = _call(path, ReleaseNow(paths=paths or []), timeout)
    if not isinstance(answer, Released):
        raise ControlError(f"the mount daemon at {path} did not say what it released")
    return answer.released


def unmount_now(path: Path, timeout: float = 120.0) -> None:
    """Ask the mount to release everything and unmount; returns once it has agreed to."""
    answer = _call(path, UnmountRequest(), timeout)
    if not isinstance(answer, Done):
        raise ControlError(f"the mount daemon at {path} did not agree to unmount")
