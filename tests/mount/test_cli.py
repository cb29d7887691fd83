"""`leasefs mount` as people run it: detached, with clear errors, and `umount` to undo it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from leasefs._config import _registry
from leasefs._fs import is_mounted, unmount
from tests.helpers import CoordinatorProcess, run, using_data_dir


@pytest.fixture
def cli_env(tmp_path: Path, coordinator: CoordinatorProcess) -> Iterator[dict[str, str]]:
    data = tmp_path / "data"
    env = {**os.environ, "LEASEFS_DATA_DIR": str(data), "LEASEFS_COORDINATOR": coordinator.url}
    yield env
    # Whatever the test left: the detached daemon is found through its record, by PID.
    with using_data_dir(data):
        for record in _registry.all_records():
            if _registry.process_alive(record.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(record.pid, signal.SIGKILL)
            if is_mounted(record.repo):
                unmount(record.repo, lazy=True)


def leasefs(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leasefs", *args], env=env, capture_output=True, text=True,
        timeout=90, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_mount_detaches_and_umount_undoes_it(
    cli_env: dict[str, str], tmp_path: Path, origin: Path
) -> None:
    repo = tmp_path / "repo"
    run("git", "clone", "-q", origin, repo)
    mounted = leasefs(cli_env, "mount", str(repo), "--workspace", "cli-team", "--agent", "dana")
    assert mounted.returncode == 0, mounted.stderr
    assert f"mounted {repo} as dana in workspace cli-team" in mounted.stdout
    assert "log " in mounted.stdout
    assert is_mounted(repo)
    again = leasefs(cli_env, "mount", str(repo))
    assert again.returncode == 1 and "already mounted" in again.stderr
    (repo / "README.md").write_text("# through the detached mount\n")
    status = leasefs(cli_env, "status", str(repo))
    assert "agent dana" in status.stdout and "README.md  held" in status.stdout
    done = leasefs(cli_env, "umount", str(repo))
    assert done.returncode == 0, done.stderr
    assert not is_mounted(repo)
    assert (repo / "README.md").read_text() == "# through the detached mount\n"
    assert leasefs(cli_env, "status").stdout.strip() == "no leasefs mounts"


def test_clear_errors_for_bad_arguments(cli_env: dict[str, str], tmp_path: Path) -> None:
    missing = leasefs(cli_env, "mount", str(tmp_path / "nope"))
    assert missing.returncode == 1 and "is not a directory" in missing.stderr
    not_mounted = leasefs(cli_env, "umount", str(tmp_path))
    assert not_mounted.returncode == 1 and "is not mounted" in not_mounted.stderr
    outside = leasefs(cli_env, "who", str(tmp_path))
    assert outside.returncode == 1 and "not inside a leasefs mount" in outside.stderr
    unreachable = {**cli_env, "LEASEFS_COORDINATOR": "http://127.0.0.1:9"}
    (tmp_path / "plain").mkdir()
    refused = leasefs(unreachable, "mount", str(tmp_path / "plain"))
    assert refused.returncode == 1 and "cannot reach the coordinator" in refused.stderr
    assert not is_mounted(tmp_path / "plain")


def test_a_fifo_in_scope_is_released_without_a_snapshot_and_stalls_nothing(
    cli_env: dict[str, str], tmp_path: Path, origin: Path
) -> None:
    """A snapshot never opens a FIFO (it would block until a writer came): its lease and every
    other lease of the same release go back, and unmounting does not hang."""
    repo = tmp_path / "repo"
    run("git", "clone", "-q", origin, repo)
    mounted = leasefs(cli_env, "mount", str(repo), "--idle-grace", "60")
    assert mounted.returncode == 0, mounted.stderr
    os.mkfifo(repo / "pipe")
    (repo / "notes.txt").write_text("beside the pipe\n")
    status = leasefs(cli_env, "status", str(repo))
    assert "pipe  held" in status.stdout and "notes.txt  held" in status.stdout
    released = leasefs(cli_env, "release", str(repo / "pipe"), str(repo / "notes.txt"))
    assert released.returncode == 0, released.stderr
    assert "released 2 lease(s)" in released.stdout
    assert "no leases held" in leasefs(cli_env, "status", str(repo)).stdout
    done = leasefs(cli_env, "umount", str(repo))
    assert done.returncode == 0, done.stderr
    assert (repo / "notes.txt").read_text() == "beside the pipe\n"
    assert (repo / "pipe").is_fifo()


def test_umount_forgets_a_dead_mount_whose_folder_is_gone(
    cli_env: dict[str, str], tmp_path: Path, origin: Path
) -> None:
    repo = tmp_path / "repo"
    run("git", "clone", "-q", origin, repo)
    assert leasefs(cli_env, "mount", str(repo)).returncode == 0
    os.environ["LEASEFS_DATA_DIR"] = cli_env["LEASEFS_DATA_DIR"]
    try:
        record = _registry.read(repo)
    finally:
        del os.environ["LEASEFS_DATA_DIR"]
    assert record is not None
    os.kill(record.pid, signal.SIGKILL)
    run("fusermount3", "-uz", repo, check=False)
    for _ in range(200):
        if not _registry.process_alive(record.pid) and not is_mounted(repo):
            break
        time.sleep(0.05)
    subprocess.run(["rm", "-rf", str(repo)], check=True, timeout=60)
    died = leasefs(cli_env, "status")
    assert f"{repo}: the mount daemon died" in died.stdout
    forgot = leasefs(cli_env, "umount", str(repo))
    assert forgot.returncode == 0, forgot.stderr
    assert "forgot the mount of" in forgot.stdout
    assert leasefs(cli_env, "status").stdout.strip() == "no leasefs mounts"
    again = leasefs(cli_env, "umount", str(repo))
    assert again.returncode == 1 and "is not a directory" in again.stderr
