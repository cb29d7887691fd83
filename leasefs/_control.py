"""The mount daemon's control socket: how `leasefs status`, `release` and `umount` reach it.

One JSON object per line each way, over a Unix socket only its owner can open. Requests are
``{"op": "status" | "release" | "umount", ...}``; answers are ``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

log = logging.getLogger("leasefs.mount")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
_MAX_LINE = 1 << 20


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
            while b"\n" not in buffer and len(buffer) < _MAX_LINE:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                buffer += chunk
            try:
                request = json.loads(buffer.split(b"\n", 1)[0])
                answer = await handler(request)
            except Exception as exc:
                log.exception("control request failed")
                answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            await stream.send_all(json.dumps(answer).encode() + b"\n")

    try:
        task_status.started()
        await trio.serve_listeners(connection, [listener])
    finally:
        _remove(path)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def call(path: Path, request: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
    """Send one request to a mount daemon and return its answer (blocking)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps(request).encode() + b"\n")
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
    answer: dict[str, Any] = json.loads(data)
    if not answer.get("ok"):
        raise ControlError(str(answer.get("error", "the mount daemon refused the request")))
    return answer
