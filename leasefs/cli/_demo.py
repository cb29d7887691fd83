"""`leasefs demo`: the whole story, for real, in about ten seconds.

A throwaway repository, two clones mounted as two agents on the embedded coordinator, agent
A editing a file, agent B refused with EBUSY and told who holds it, A finishing, A's bytes
appearing in B's tree, B editing on top. Everything is unmounted and removed at the end.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .._client import ControlError, resolve_coordinator_url, unmount_now
from .._config import _registry
from .._fs import is_mounted, unmount

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "leasefs demo", "GIT_AUTHOR_EMAIL": "demo@leasefs.invalid",
    "GIT_COMMITTER_NAME": "leasefs demo", "GIT_COMMITTER_EMAIL": "demo@leasefs.invalid",
}  # fmt: skip
_STEP_TIMEOUT_S = 30.0


class DemoFailed(Exception):
    pass


def _say(text: str = "") -> None:
    print(text, flush=True)


def _git(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, timeout=60,
        env={**os.environ, **_GIT_ENV}, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _wait_for(predicate: Callable[[], bool], what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > _STEP_TIMEOUT_S:
            raise DemoFailed(f"timed out waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - started


def _make_repository(base: Path) -> tuple[Path, Path]:
    origin, seed = base / "origin.git", base / "seed"
    _git("init", "-q", "--bare", "-b", "main", str(origin))
    _git("init", "-q", "-b", "main", str(seed))
    (seed / "src").mkdir()
    (seed / "src" / "app.py").write_text('def greet():\n    return "hello"\n')
    (seed / "README.md").write_text("# demo\n")
    _git("add", ".", cwd=seed)
    _git("commit", "-qm", "initial", cwd=seed)
    _git("push", "-q", str(origin), "main", cwd=seed)
    a, b = base / "agent-a", base / "agent-b"
    _git("clone", "-q", str(origin), str(a))
    _git("clone", "-q", str(origin), str(b))
    return a, b


@contextmanager
def _mounted(repo: Path, agent: str, coordinator: str, workspace: str) -> Iterator[None]:
    command = [
        sys.executable, "-m", "leasefs", "mount", str(repo), "--foreground",
        "--coordinator", coordinator, "--workspace", workspace, "--agent", agent,
        "--idle-grace", "0.3",
    ]  # fmt: skip
    log = repo.parent / f"{agent}.log"
    with open(log, "wb") as out:
        daemon = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd="/"
        )
    try:
        _wait_for(
            lambda: (
                daemon.poll() is not None or (_registry.read(repo) is not None and is_mounted(repo))
            ),
            f"{agent}'s mount",
        )
        if daemon.poll() is not None:
            raise DemoFailed(f"{agent}'s mount failed:\n{log.read_text(errors='replace')[-2000:]}")
        yield
    finally:
        record = _registry.read(repo)
        if record is not None and daemon.poll() is None:
            try:
                unmount_now(Path(record.socket), timeout=60)
                daemon.wait(60)
            except (ControlError, subprocess.TimeoutExpired):
                daemon.kill()
                daemon.wait(10)
        if is_mounted(repo):
            unmount(repo, lazy=True)


def run_demo() -> None:
    started = time.monotonic()
    _say("leasefs demo: two agents, one repository, no lost work.\n")
    coordinator = resolve_coordinator_url(None)
    _say(f"coordinator: {coordinator} (the embedded one, on 127.0.0.1)")
    base = Path(tempfile.mkdtemp(prefix="leasefs-demo-"))
    try:
        a, b = _make_repository(base)
        workspace = f"demo-{os.getpid()}"
        _say(f"repository: two clones in {base}: agent-a and agent-b\n")
        with (
            _mounted(a, "agent-A", coordinator, workspace),
            _mounted(b, "agent-B", coordinator, workspace),
        ):
            _say("1. Both clones are mounted in place with `leasefs mount`; nothing else changes.")
            file_a, file_b = a / "src" / "app.py", b / "src" / "app.py"
            editor = open(file_a, "a")  # noqa: SIM115 - held open like an editor's buffer
            try:
                editor.write('\n\ndef farewell():\n    return "bye"\n')
                editor.flush()
                _say("2. Agent A starts editing src/app.py (its write took the lease).")
                try:
                    with open(file_b, "a") as other:
                        other.write("# B's edit\n")
                    raise DemoFailed("agent B's write went through while A held the lease")
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        raise
                    holder = json.loads(os.getxattr(file_b, "user.leasefs.holder"))
                    _say(f"3. Agent B writes the same file: refused, {os.strerror(exc.errno)}"
                         f" (EBUSY). Held by {holder['agent']}, says the user.leasefs.holder"
                         " attribute.")  # fmt: skip
            finally:
                editor.close()
            expected = file_a.read_text()
            _say("4. Agent A closes the file; its lease is released with a snapshot.")
            took = _wait_for(lambda: file_b.read_text() == expected, "A's content in B's tree")
            _say(f"5. A's bytes appear in B's tree {took * 1000:.0f} ms later, without a git pull:")
            for line in file_b.read_text().splitlines():
                _say(f"       {line}")
            with open(file_b, "a") as f:
                f.write('\n\ndef welcome():\n    return "welcome"\n')
            _say("6. Agent B edits on top of A's work: its write takes the lease at once.")
            final = file_b.read_text()
            took = _wait_for(lambda: file_a.read_text() == final, "B's content in A's tree")
            _say(f"7. ...and {took * 1000:.0f} ms after B closes, A has both functions.")
        _say("\nBoth mounts unmounted; each clone holds exactly the latest content.")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    _say(f"Done in {time.monotonic() - started:.1f} s. Try it on yours: leasefs mount ./repo")
