"""Two clones of one git repository, each mounted by `leasefs mount` as a different agent.

Each mount daemon is a child of the test (``leasefs mount --foreground``), so it is stopped by
its PID whatever happens; every mount is taken away in a finalizer that runs on failure too.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio

from leasefs import Client
from leasefs._config import _registry
from leasefs._fs import is_mounted, unmount
from tests.helpers import CoordinatorProcess

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 60.0
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}  # fmt: skip


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def run(*args: str | Path, cwd: Path | None = None, check: bool = True, timeout: float = 60,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """A real tool, with a timeout, so a hung mount fails the test instead of hanging it."""
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, check=check, timeout=timeout, capture_output=True,
        text=True, stdin=subprocess.DEVNULL, env={**os.environ, **GIT_ENV, **(env or {})},
    )  # fmt: skip


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:g} s")
        time.sleep(0.05)


def audit_actions(url: str, workspace: str, path: str) -> list[tuple[str, str | None]]:
    async def read() -> list[tuple[str, str | None]]:
        async with Client(url) as auditor:
            await auditor.register(workspace, "auditor")
            return [(e.action, e.agent_name) for e in await auditor.audit(path=path)]

    return trio.run(read)


class AgentMount:
    """`leasefs mount REPO --foreground` as one agent, in a child process."""

    def __init__(self, repo: Path, agent: str, workspace: str, coordinator: str, data_dir: Path,
                 *options: str) -> None:  # fmt: skip
        self.repo = repo
        self.agent = agent
        self.url = coordinator
        self.workspace = workspace
        self.env = {**os.environ, "LEASEFS_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
        self.argv = [
            sys.executable, "-m", "leasefs", "mount", str(repo), "--foreground",
            "--coordinator", coordinator, "--workspace", workspace, "--agent", agent,
            "--idle-grace", "0.5", *options,
        ]  # fmt: skip
        self.log = data_dir / f"{agent}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def leasefs(
        self, *args: str, check: bool = True, timeout: float = 90, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "leasefs", *args], env=self.env, capture_output=True,
            text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(
                f"leasefs {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
            )
        return result

    def start(self) -> AgentMount:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent, cwd="/",
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (self.record() is not None and is_mounted(self.repo)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mount of {self.repo} did not come up:\n{self.output()}")
            time.sleep(0.05)
        return self

    def record(self) -> _registry.MountRecord | None:
        old = os.environ.get("LEASEFS_DATA_DIR")
        os.environ["LEASEFS_DATA_DIR"] = self.env["LEASEFS_DATA_DIR"]
        try:
            return _registry.read(self.repo)
        finally:
            if old is None:
                del os.environ["LEASEFS_DATA_DIR"]
            else:
                os.environ["LEASEFS_DATA_DIR"] = old

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def umount(self) -> None:
        """The user's way out: `leasefs umount`, which releases with snapshots."""
        self.leasefs("umount", str(self.repo))
        assert self.proc is not None
        self.proc.wait(STOP_TIMEOUT_S)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(STOP_TIMEOUT_S)

    def stop(self) -> None:
        """Whatever state it is in: gone, unmounted, and its process reaped."""
        if self.alive:
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                self.umount()
        if is_mounted(self.repo):
            try:
                unmount(self.repo, timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                unmount(self.repo, lazy=True, timeout=10)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A bare repository with two commits of a small project."""
    seed = tmp_path / "seed"
    bare = tmp_path / "origin.git"
    run("git", "init", "-q", "--bare", "-b", "main", bare)
    run("git", "init", "-q", "-b", "main", seed)
    (seed / "src").mkdir()
    (seed / "src" / "app.py").write_text("print('v0')\n")
    (seed / "README.md").write_text("# project\n")
    (seed / ".gitignore").write_text("*.log\n__pycache__/\n")
    run("git", "add", ".", cwd=seed)
    run("git", "commit", "-qm", "first", cwd=seed)
    (seed / "src" / "app.py").write_text("print('v1')\n")
    run("git", "commit", "-qam", "second", cwd=seed)
    run("git", "push", "-q", str(bare), "main", cwd=seed)
    return bare


MountFactory = Callable[..., AgentMount]


@pytest.fixture
def mount_agent(
    coordinator: CoordinatorProcess, tmp_path: Path, origin: Path, workspace_name: str
) -> Iterator[MountFactory]:
    """``mount_agent("alice", *options)``: a fresh clone of origin, mounted as that agent."""
    mounts: list[AgentMount] = []

    def factory(
        agent: str, *options: str, clone: bool = True, coordinator_url: str | None = None
    ) -> AgentMount:
        repo = tmp_path / agent
        if clone and not repo.exists():
            run("git", "clone", "-q", origin, repo)
        data = tmp_path / f"{agent}-data"
        data.mkdir(exist_ok=True)
        url = coordinator_url or coordinator.url
        mount = AgentMount(repo, agent, workspace_name, url, data, *options)
        mounts.append(mount)
        return mount.start()

    try:
        yield factory
    finally:
        for mount in mounts:
            mount.stop()
