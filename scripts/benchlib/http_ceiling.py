"""Figure 3's reference: what the coordinator's HTTP server does with nothing behind it.

The coordinator is hypercorn's trio worker in one process (DESIGN, Stack). Serving a bare
ASGI answer (no routing, no validation, no store) through that same server, loaded by a
generator that costs next to nothing (raw sockets in a process of its own, requests prebuilt),
shows the most requests per second one core can answer before any of our code runs; the
coordinator's CPU per lease operation is read against that server's CPU per request.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from .procs import cpu_seconds, die_with_parent, stop_process

CONNECTIONS = 10

_SERVER = """
import sys, trio
from hypercorn.config import Config
from hypercorn.trio import serve
from coordinator._hypercorn_guard import contain_connection_failures

contain_connection_failures()  # as `leasefs serve` runs it

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})

config = Config()
config.bind = ["127.0.0.1:" + sys.argv[1]]
config.accesslog = None
trio.run(serve, app, config)
"""

_LOAD = """
import socket, sys, threading, time
port, connections, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
request = b"GET / HTTP/1.1\\r\\nHost: bench\\r\\n\\r\\n"
answered, reconnects = [], []

def connect():
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock

def one_connection():
    # hypercorn 0.18 may drop a kept-alive connection when the next request arrives while it
    # still ends the last answer (the coordinator contains that to the connection): reconnect.
    sock, count, stop = connect(), 0, time.monotonic() + seconds
    while time.monotonic() < stop:
        try:
            sock.sendall(request)
            buffer = b""
            while not buffer.endswith(b"{}"):  # the bare answer's body ends every response
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("the server closed the connection")
                buffer += chunk
        except OSError:
            sock.close()
            reconnects.append(1)
            sock = connect()
            continue
        count += 1
    answered.append(count)

threads = [threading.Thread(target=one_connection) for _ in range(connections)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(len(reconnects), sum(answered))
"""


@dataclass(frozen=True)
class Ceiling:
    requests_per_s: float
    server_cpu_per_request_s: float
    server_cpu_share: float  # of one core, over the load
    reconnects: int  # connections the server dropped mid-load (hypercorn's send race)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(port: int, server: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the bare hypercorn server exited ({server.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the bare hypercorn server did not start listening")


def measure(seconds: float) -> Ceiling:
    """Load a bare hypercorn server for ``seconds``; its rate and CPU per request."""
    port = _free_port()
    python = sys.executable
    server = subprocess.Popen(
        [python, "-c", _SERVER, str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    try:
        _wait_listening(port, server)
        cpu_before = cpu_seconds(server.pid)
        started = time.perf_counter()
        load = subprocess.run(
            [python, "-c", _LOAD, str(port), str(CONNECTIONS), str(seconds)],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(server.pid) - cpu_before
    finally:
        stop_process(server)
    reconnects, requests = (int(word) for word in load.stdout.split()[-2:])
    if requests == 0:
        raise RuntimeError("the bare hypercorn server answered nothing")
    return Ceiling(
        requests_per_s=requests / seconds,  # each connection sends for exactly ``seconds``
        server_cpu_per_request_s=cpu / requests,
        server_cpu_share=cpu / elapsed,
        reconnects=reconnects,
    )
