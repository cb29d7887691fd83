"""Child processes of the tests: each with a timeout, none outliving the test run."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

RUN_TIMEOUT_S = 60.0
REAP_TIMEOUT_S = 10.0
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}  # fmt: skip


def die_with_parent() -> None:
    """In the child (a ``preexec_fn``): get SIGTERM if the test process dies, so no mount
    outlives the run."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class CommandFailed(subprocess.CalledProcessError):
    """A command that exited non-zero; unlike its base class, its message shows the output."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n--- stdout:\n{self.stdout}\n--- stderr:\n{self.stderr}"


def run(
    *args: str | Path,
    cwd: Path | None = None,
    check: bool = True,
    timeout: float = RUN_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
    inherit_env: bool = True,
) -> subprocess.CompletedProcess[str]:
    """A real tool, with a timeout, so a hung mount fails the test instead of hanging it.

    Output is captured as text and standard input is empty. The environment is the test's
    with `GIT_ENV` and then `env` over it, or with ``inherit_env=False`` `env` alone. With
    `check`, a non-zero exit raises `CommandFailed`.
    """
    base = {**os.environ, **GIT_ENV} if inherit_env else {}
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, timeout=timeout, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, env={**base, **(env or {})}, check=False,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise CommandFailed(result.returncode, result.args, result.stdout, result.stderr)
    return result


def leasefs_cli(
    *args: str,
    env: Mapping[str, str],
    cwd: Path | None = None,
    check: bool = True,
    timeout: float = RUN_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """``python -m leasefs ARGS``, as `run` does it, in exactly the environment `env`.

    Without `cwd` it runs in the temporary directory, never in the source checkout: commands
    such as ``leasefs join`` write into the repository they are run in.
    """
    return run(
        sys.executable, "-m", "leasefs", *args, cwd=cwd or Path(tempfile.gettempdir()),
        check=check, timeout=timeout, env=env,
        inherit_env=False,
    )  # fmt: skip


def reap(
    proc: subprocess.Popen[bytes] | None, *, grace: float = 0.0, timeout: float = REAP_TIMEOUT_S
) -> None:
    """Make sure a child is gone: `grace` seconds to exit by itself, then SIGTERM, then SIGKILL,
    each waited for up to `timeout` seconds."""
    if proc is None or proc.poll() is not None:
        return
    if grace > 0:
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            pass
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
