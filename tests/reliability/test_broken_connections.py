"""Connections reset by peers in the middle of answers never bring the coordinator down.

Event streams that are being written to, and requests whose answers are on their way, are
reset (RST) by their clients at once, round after round, while agents keep the event stream
busy. The coordinator must stay up and keep answering.
"""

from __future__ import annotations

import socket
import struct
import threading

import httpx

from tests.helpers import CoordinatorProcess

ROUNDS = 15
STREAMS = 30


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _open_stream(port: int, token: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        f"GET /v1/events HTTP/1.1\r\nHost: c\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\nLast-Event-ID: 0\r\n\r\n".encode()
    )
    return sock


def test_resets_in_the_middle_of_answers_leave_the_coordinator_up(
    fresh_coordinator: CoordinatorProcess,
) -> None:
    with httpx.Client(base_url=fresh_coordinator.url + "/v1", timeout=10) as http:
        http.post("/workspaces", json={"name": "resets"}).raise_for_status()
        joined = http.post("/agents", json={"workspace": "resets", "name": "churner"})
        token = joined.raise_for_status().json()["token"]
    stop = threading.Event()

    def churn() -> None:
        """Keep events flowing: every acquire and release is an event on every stream."""
        with httpx.Client(base_url=fresh_coordinator.url + "/v1", timeout=10) as http:
            headers = {"Authorization": f"Bearer {token}"}
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    grant = http.post("/leases/acquire", json={"paths": [f"f{n % 7}"]},
                                      headers=headers)  # fmt: skip
                    if grant.status_code == 200:
                        refs = [{"path": x["path"], "token": x["token"]}
                                for x in grant.json()["leases"]]  # fmt: skip
                        http.post("/leases/release", json={"leases": refs}, headers=headers)
                except httpx.TransportError:
                    if fresh_coordinator.process and fresh_coordinator.process.poll() is not None:
                        return

    churner_thread = threading.Thread(target=churn, daemon=True)
    churner_thread.start()
    try:
        for _ in range(ROUNDS):
            streams = [_open_stream(fresh_coordinator.port, token) for _ in range(STREAMS)]
            for sock in streams:  # let the answers start flowing
                sock.recv(1024)
            requests = []
            for _ in range(STREAMS):
                sock = socket.create_connection(("127.0.0.1", fresh_coordinator.port), timeout=10)
                sock.sendall(
                    f"GET /v1/events/head HTTP/1.1\r\nHost: c\r\nAuthorization: Bearer {token}"
                    "\r\n\r\n".encode()
                )
                requests.append(sock)
            for sock in streams + requests:
                _reset(sock)
            assert fresh_coordinator.process is not None
            assert fresh_coordinator.process.poll() is None, "".join(fresh_coordinator.output)
    finally:
        stop.set()
        churner_thread.join(30)
    health = httpx.get(fresh_coordinator.url + "/v1/health", timeout=10)
    assert health.status_code == 200
