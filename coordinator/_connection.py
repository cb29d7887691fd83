"""Say ``Connection: close`` when an answer leaves a request body unread.

When a route refuses a request before reading its body (a bad token, a malformed digest, a
blob over the size limit), the server cannot find the start of the next request on that
connection and closes it. Without the header the client believes the connection reusable,
sends its next request on it at once and reports the coordinator unreachable although it
never was. With it, every HTTP client opens a fresh connection instead.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_CLOSE = (b"connection", b"close")


def _declares_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding":
            return True
        if name == b"content-length" and value.strip() not in (b"", b"0"):
            return True
    return False


class AnnounceEarlyClose:
    """ASGI middleware: adds ``Connection: close`` to a response that starts before the
    request's body has been read to its end."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _declares_body(scope):
            await self.app(scope, receive, send)
            return
        body_read = False

        async def tracking_receive() -> Message:
            nonlocal body_read
            message = await receive()
            if message["type"] == "http.disconnect" or (
                message["type"] == "http.request" and not message.get("more_body", False)
            ):
                body_read = True
            return message

        async def announcing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not body_read:
                headers = [h for h in message.get("headers", ()) if h[0].lower() != b"connection"]
                message = {**message, "headers": [*headers, _CLOSE]}
            await send(message)

        await self.app(scope, tracking_receive, announcing_send)
