"""Real FUSE mounts, each served by a child process of the test: a bare passthrough
(`MountProcess`) or a leasefs mount acting as one agent (`AgentMount`).

A test must never serve the mount it uses from its own process: its first syscall on the
mount would wait for a request loop that cannot run. So every mount is a child process that
gets SIGTERM if the test process dies, and every mount is taken away by `stop`, which a
fixture's finalizer calls on failure too: fusermount3 -u, then -uz, then the child is
stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Self

from leasefs._config import _registry
from leasefs._fs import is_mounted

from .fuse import unmount_cleanly
from .processes import die_with_parent, leasefs_cli, reap
from .waiting import wait_for


class ChildMount:
    """A mount of ``directory`` served by the child process ``argv``, its output in ``log``.

    Subclasses say when the mount is up (`ready`) and may leave politely first (`leave`).
    """

    start_timeout: float = 15.0
    exit_grace: float = 0.0  # once unmounted, how long the server may take to exit by itself
    poll_interval: float = 0.02

    def __init__(
        self,
        directory: Path,
        argv: list[str],
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> None:
        self.directory = directory
        self.argv = argv
        self.log = log
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        """Start the server and wait until the mount is up; if it is not, stop and raise."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
            )  # fmt: skip
        try:
            wait_for(
                self._up,
                timeout=self.start_timeout,
                interval=self.poll_interval,
                what=f"the mount of {self.directory}",
            )
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            raise type(exc)(f"{exc}:\n{self.output()}") from None
        return self

    def _up(self) -> bool:
        if self.ready():
            return True
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"mount process of {self.directory} exited early")
        return False

    def ready(self) -> bool:
        return self.mounted

    @property
    def mounted(self) -> bool:
        return is_mounted(self.directory)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def leave(self) -> None:
        """The mount's own way out, tried first by `stop`; by default none."""

    def stop(self) -> None:
        """Whatever state it is in: gone, unmounted, and its process reaped."""
        self.leave()
        unmount_cleanly(self.directory)
        reap(self.proc, grace=self.exit_grace)


def stop_all(mounts: Iterable[ChildMount]) -> None:
    """Stop every mount, in the order given, even when stopping one of them fails."""
    errors: list[BaseException] = []
    for mount in mounts:
        try:
            mount.stop()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


class MountProcess(ChildMount):
    """One bare passthrough mount of ``directory`` over itself (``python -m leasefs._fs``, or a
    script standing in for the lease layer); up once mounted and it has printed 'mounted'
    (so its background task, if any, has started)."""

    STOP_TIMEOUT = 10.0
    start_timeout = 15.0
    exit_grace = STOP_TIMEOUT

    def ready(self) -> bool:
        return self.mounted and "mounted" in self.output()

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)


@contextlib.contextmanager
def using_data_dir(data_dir: str | Path) -> Iterator[None]:
    """``LEASEFS_DATA_DIR`` set in this process (to read a mount's registry), then restored."""
    old = os.environ.get("LEASEFS_DATA_DIR")
    os.environ["LEASEFS_DATA_DIR"] = str(data_dir)
    try:
        yield
    finally:
        if old is None:
            del os.environ["LEASEFS_DATA_DIR"]
        else:
            os.environ["LEASEFS_DATA_DIR"] = old


class AgentMount(ChildMount):
    """`leasefs mount REPO --foreground` as one agent, in a child process; up once mounted
    and in the mount registry."""

    STOP_TIMEOUT_S = 60.0
    start_timeout = 30.0
    poll_interval = 0.05

    def __init__(self, repo: Path, agent: str, workspace: str, coordinator: str, data_dir: Path,
                 *options: str) -> None:  # fmt: skip
        self.agent = agent
        self.url = coordinator
        self.workspace = workspace
        argv = [
            sys.executable, "-m", "leasefs", "mount", str(repo), "--foreground",
            "--coordinator", coordinator, "--workspace", workspace, "--agent", agent,
            "--idle-grace", "0.5", *options,
        ]  # fmt: skip
        env = {**os.environ, "LEASEFS_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
        super().__init__(repo, argv, data_dir / f"{agent}.log", env=env, cwd="/")
        self.env = env

    @property
    def repo(self) -> Path:
        return self.directory

    def leasefs(
        self, *args: str, check: bool = True, timeout: float = 90, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = leasefs_cli(*args, env=self.env, cwd=cwd, check=False, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(
                f"leasefs {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
            )
        return result

    def ready(self) -> bool:
        return self.record() is not None and self.mounted

    def record(self) -> _registry.MountRecord | None:
        with using_data_dir(self.env["LEASEFS_DATA_DIR"]):
            return _registry.read(self.repo)

    def umount(self) -> None:
        """The user's way out: `leasefs umount`, which releases with snapshots."""
        self.leasefs("umount", str(self.repo))
        assert self.proc is not None
        self.proc.wait(self.STOP_TIMEOUT_S)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(self.STOP_TIMEOUT_S)

    def leave(self) -> None:
        if self.alive:
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                self.umount()
