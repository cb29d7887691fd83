"""Refuse JSON request bodies over a size limit before anything parses them.

Blob uploads (``/v1/blobs/…``) stream to disk under their own limit and pass untouched. Every
other body is JSON of a few KiB at most; one of many MiB is a mistake or an attack, and would
otherwise be read whole into memory by the JSON parser. A body that declares its length is
refused before a byte of it is read; a chunked one is counted while it is read.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leasefs.wire import ErrorCode

_STREAMED_PREFIX = "/v1/blobs/"


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class LimitJsonBodies:
    """ASGI middleware: a 413 ``body_too_large`` for bodies over ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_STREAMED_PREFIX):
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None:
            if declared > self.max_bytes:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        # No declared length: read the (chunked) body here, up to the limit, then replay it.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away; nobody to answer
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {
                "error": ErrorCode.BODY_TOO_LARGE.value,
                "message": f"the request body is over {self.max_bytes} bytes, the limit for "
                "JSON requests (leasefs serve --max-json-bytes)",
                "details": {"max_bytes": self.max_bytes},
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
