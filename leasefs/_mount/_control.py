"""The mount daemon's side of its control socket (the callers' side: `leasefs._client`).

One JSON line each way, typed by `leasefs.wire`, over a Unix socket only its owner can open.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio
from pydantic import ValidationError

from ..wire import (
    CONTROL_REQUEST,
    MAX_CONTROL_LINE_BYTES,
    ControlAnswer,
    ControlRefusal,
    ControlRequest,
    encode_line,
)

log = logging.getLogger("leasefs.mount")

Handler = Callable[[ControlRequest], Awaitable[ControlAnswer]]


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
