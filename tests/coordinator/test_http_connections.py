"""Keep-alive connections survive a refused request, whenever the refusal comes.

A client reuses a connection after a complete answer unless the answer says
``Connection: close``. When the coordinator refuses a request before reading its body (a bad
token, a malformed digest, a blob over the size limit), hypercorn cannot start the next
request on that connection and closes it; the answer must say so, or a client that sends its
next request at once (httpx does, as leasefs.Client does) meets a closed connection and
reports the coordinator unreachable although it never was.

Raw sockets make the order of events certain: the request head goes first, the body only
after the coordinator had time to answer.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.helpers import CoordinatorProcess

_HEAD_START_S = 0.2  # time the coordinator gets to answer before the body follows


@dataclass
class Target:
    host: str
    port: int
    token: str


@pytest.fixture(scope="module")
def target(coordinator: CoordinatorProcess) -> Iterator[Target]:
    with httpx.Client(base_url=coordinator.url, timeout=10) as http:
        workspace = f"connections-{os.getpid()}"
        http.post("/v1/workspaces", json={"name": workspace})
        registered = http.post("/v1/agents", json={"workspace": workspace, "name": "raw"})
        registered.raise_for_status()
        yield Target("127.0.0.1", coordinator.port, registered.json()["token"])


def _read_response(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length: status line, headers, body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed in the middle of a response body")
        body += chunk
    return status, headers, body


def _refused_then_reused(target: Target, head: str, body: bytes) -> tuple[str, str | None]:
    """Send ``head``, then (after a pause) ``body``, then a second request on the same
    connection. Returns the first status line and, unless the first answer said
    ``Connection: close``, the second status line (None if the connection was dead)."""
    with socket.create_connection((target.host, target.port), timeout=5) as sock:
        sock.sendall(head.replace("TOKEN", target.token).encode() + b"\r\n\r\n")
        time.sleep(_HEAD_START_S)
        sock.sendall(body)
        status, headers, _ = _read_response(sock)
        if "close" in headers.get("connection", "").lower():
            return status, "closed, as announced"
        try:
            sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: coordinator\r\n\r\n")
            second, _, _ = _read_response(sock)
        except (ConnectionError, OSError):
            return status, None
        return status, second


REFUSED_BEFORE_THE_BODY = {
    "unknown token": (
        "PUT /v1/blobs/" + "0" * 64 + " HTTP/1.1\r\nHost: coordinator\r\n"
        "Authorization: Bearer not-a-token\r\nContent-Length: 1000",
        b"x" * 1000,
    ),
    "malformed digest": (
        "PUT /v1/blobs/not-a-digest HTTP/1.1\r\nHost: coordinator\r\n"
        "Authorization: Bearer TOKEN\r\nContent-Length: 1000",
        b"x" * 1000,
    ),
    "body on a call without one": (
        "GET /v1/agents/me HTTP/1.1\r\nHost: coordinator\r\n"
        "Authorization: Bearer not-a-token\r\nContent-Type: application/json\r\n"
        "Content-Length: 2",
        b"{}",
    ),
}


def test_a_refusal_after_the_body_keeps_the_connection(target: Target) -> None:
    """The baseline: a JSON body is read before any check, so its refusal leaves a
    connection the next request can use."""
    head = (
        "POST /v1/leases/acquire HTTP/1.1\r\nHost: coordinator\r\n"
        "Authorization: Bearer not-a-token\r\nContent-Type: application/json\r\n"
        "Content-Length: 17"
    )
    first, second = _refused_then_reused(target, head, b'{"paths": ["a"]} ')
    assert first.startswith("HTTP/1.1 401")
    assert second is not None and second.startswith("HTTP/1.1 200"), second


@pytest.mark.parametrize("case", sorted(REFUSED_BEFORE_THE_BODY))
def test_a_refusal_before_the_body_is_announced_or_keeps_the_connection(
    target: Target, case: str
) -> None:
    head, body = REFUSED_BEFORE_THE_BODY[case]
    first, second = _refused_then_reused(target, head, body)
    assert first.startswith(("HTTP/1.1 401", "HTTP/1.1 422")), first
    assert second is not None, (
        f"{case}: answered {first!r} without 'Connection: close', then closed the connection"
    )
