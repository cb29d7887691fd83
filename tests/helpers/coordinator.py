"""Real coordinator processes for tests: started on a loopback port, stopped by PID;
and its audit read from outside trio."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trio

from leasefs import Client

_READY = re.compile(r"listening on (https?://127\.\d+\.\d+\.\d+:\d+)")
START_TIMEOUT_S = 30.0


class CoordinatorProcess:
    """One `leasefs serve` subprocess on a loopback address (127.0.0.1 unless ``host`` says
    which other one) with its data in ``data_dir``."""

    def __init__(self, data_dir: Path, *extra_args: str, host: str = "127.0.0.1") -> None:
        self.data_dir = data_dir
        self.host = host
        self.extra_args = extra_args
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.output: list[str] = []

    def start(self, port: int = 0) -> CoordinatorProcess:
        cmd = [
            sys.executable,
            "-m",
            "leasefs",
            "serve",
            "--host",
            self.host,
            "--port",
            str(port),
            "--data",
            str(self.data_dir),
            *self.extra_args,
        ]
        self.output = []
        self.process = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        ready = threading.Event()
        threading.Thread(target=self._pump, args=(self.process, ready), daemon=True).start()
        if not ready.wait(START_TIMEOUT_S) or not self.url:
            self.kill()
            raise RuntimeError("coordinator did not start:\n" + "".join(self.output))
        return self

    def _pump(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        """Collect one process's output; takes the process, not ``self.process``,
        because a restart replaces that while this thread still drains the old pipe."""
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                self.output.append(line)
                match = _READY.search(line)
                if match and not ready.is_set():
                    self.url = match.group(1)
                    ready.set()
        ready.set()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def peak_rss_bytes(self) -> int:
        """The process's peak resident memory so far (VmHWM)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmHWM in /proc status")

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful stop (SIGTERM), then SIGKILL if it does not exit in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.kill()
        self.process.wait(10)


@contextmanager
def serving(data_dir: Path, *extra_args: str) -> Iterator[CoordinatorProcess]:
    """A coordinator of a test's own with ``extra_args`` (limits, TLS…), stopped afterwards."""
    server = CoordinatorProcess(data_dir, *extra_args).start()
    try:
        yield server
    finally:
        server.stop()


def audit_actions(url: str, workspace: str, path: str) -> list[tuple[str, str | None]]:
    """(action, agent) of every audit entry about `path`, as an auditor of `workspace` reads."""

    async def read() -> list[tuple[str, str | None]]:
        async with Client(url) as auditor:
            await auditor.register(workspace, "auditor")
            return [(e.action, e.agent_name) for e in await auditor.audit(path=path)]

    return trio.run(read)
