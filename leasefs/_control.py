"""The mount daemon's control socket: how `leasefs status`, `release` and `umount` reach it.

One JSON line each way (`leasefs.wire` declares the messages), over a Unix socket only its
owner can open. `serve_control` is the daemon's side; `mount_status`, `release_now` and
`unmount_now` are the callers' (blocking: from a worker thread in async code).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio
from pydantic import TypeAdapter, ValidationError

from .wire import (
    CONTROL_REQUEST,
    MAX_CONTROL_LINE_BYTES,
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

log = logging.getLogger("leasefs.mount")

Handler = Callable[[ControlRequest], Awaitable[ControlAnswer]]
_ANSWER: TypeAdapter[ControlAnswer] = TypeAdapter(ControlAnswer)


class ControlError(Exception):
    """The mount daemon could not be reached or refused the request."""


async def serve_control(
    path: Path,
    handler: Handler,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    _remove(path)
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        await sock.bind(str(path))
    finally:
        os.umask(old_umask)
    sock.listen(16)
    listener = trio.SocketListener(sock)

    async def connection(stream: trio.SocketStream) -> None:
        async with stream:
            buffer = b""
            while b"\n" not in buffer and len(buffer) < MAX_CONTROL_LINE_BYTES:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                buffer += chunk
            answer: ControlAnswer
            try:
                request = CONTROL_REQUEST.validate_json(buffer.split(b"\n", 1)[0])
            except ValidationError as exc:
                answer = ControlRefusal(error=f"not a control request: {exc}")
            else:
                try:
                    answer = await handler(request)
                except Exception as exc:
                    log.exception("control request failed")
                    answer = ControlRefusal(error=f"{type(exc).__name__}: {exc}")
            await stream.send_all(encode_line(answer))

    try:
        task_status.started()
        await trio.serve_listeners(connection, [listener])
    finally:
        _remove(path)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


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
