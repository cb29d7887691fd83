"""Nothing is lost: divergent files, killed mounts, unmount and remount, a lost coordinator."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import subprocess
import time
from pathlib import Path

import httpx

from leasefs._fs import is_mounted
from tests.helpers import AgentMount, CoordinatorProcess, TcpProxy, audit_actions, run, wait_for
from tests.mount.conftest import MountFactory


def test_divergent_local_file_is_never_overwritten(
    mount_agent: MountFactory, coordinator: CoordinatorProcess, workspace_name: str
) -> None:
    alice, bob = mount_agent("alice"), mount_agent("bob")
    bob.umount()
    # While bob is away, his copy diverges, and alice edits the same file.
    (bob.repo / "src" / "app.py").write_text("print('bob offline')\n")
    (alice.repo / "src" / "app.py").write_text("print('alice')\n")
    wait_for(lambda: "src/app.py" not in alice.leasefs("status", str(alice.repo)).stdout,
             what="alice's release")  # fmt: skip
    bob = mount_agent("bob", clone=False)  # catches up with what it missed
    wait_for(lambda: any((bob.repo / "src").glob("app.conflict-alice-v*.py")), what="conflict copy")
    copy = next((bob.repo / "src").glob("app.conflict-alice-v*.py"))
    assert (bob.repo / "src" / "app.py").read_text() == "print('bob offline')\n"
    assert copy.read_text() == "print('alice')\n"
    status = bob.leasefs("status", str(bob.repo)).stdout
    assert "CONFLICT src/app.py" in status and copy.name in status
    assert ("conflict.detected", "bob") in audit_actions(
        coordinator.url, workspace_name, "src/app.py"
    )


def test_killed_mount_loses_its_leases_after_the_ttl_and_is_recoverable(
    mount_agent: MountFactory,
) -> None:
    alice = mount_agent("alice", "--ttl", "3")
    bob = mount_agent("bob", "--wait", "30")
    held = open(alice.repo / "src" / "app.py", "a")  # noqa: SIM115
    held.write("# alice's unfinished edit\n")
    held.flush()
    alice.kill()
    with contextlib.suppress(OSError):
        held.close()  # the filesystem under it is gone
    started = time.monotonic()
    run("sh", "-c", "echo 'bob after the ttl' >> src/app.py", cwd=bob.repo, timeout=40)
    assert time.monotonic() - started < 20
    assert "bob after the ttl" in (bob.repo / "src" / "app.py").read_text()
    # The dead mount's directory is usable again, with what alice had written locally.
    wait_for(lambda: not is_mounted(alice.repo), what="auto-unmount of the dead mount")
    result = alice.leasefs("umount", str(alice.repo), check=False)
    assert result.returncode in (0, 1), result.stderr
    assert "# alice's unfinished edit" in (alice.repo / "src" / "app.py").read_text()
    assert (alice.repo / "README.md").read_text() == "# project\n"


def test_unmount_and_remount_leave_the_repository_byte_identical(
    mount_agent: MountFactory,
) -> None:
    alice = mount_agent("alice")
    expected = {
        "src/app.py": b"print('final')\n",
        "docs/a.md": b"a\n",
        "bin.dat": os.urandom(70000),
    }
    (alice.repo / "docs").mkdir()
    for name, data in expected.items():
        (alice.repo / name).write_bytes(data)
    alice.umount()  # releases with snapshots, unmounts
    assert not is_mounted(alice.repo)
    for name, data in expected.items():
        assert (alice.repo / name).read_bytes() == data
    alice = mount_agent("alice", clone=False)
    for name, data in expected.items():
        assert (alice.repo / name).read_bytes() == data
    alice.umount()
    assert run("git", "status", "--porcelain", cwd=alice.repo).stdout.count("\n") == 3


def test_unreachable_coordinator_fails_writes_closed_and_keeps_reads(
    fresh_coordinator: CoordinatorProcess, tmp_path: Path, origin: Path
) -> None:
    repo = tmp_path / "carol"
    run("git", "clone", "-q", origin, repo)
    data = tmp_path / "carol-data"
    data.mkdir()
    carol = AgentMount(repo, "carol", "team", fresh_coordinator.url, data, "--ttl", "3")
    try:
        carol.start()
        port = fresh_coordinator.port
        fresh_coordinator.kill()
        result = run("bash", "-c", "echo x >> src/app.py", cwd=repo, check=False)
        assert result.returncode != 0 and "no locks available" in result.stderr.lower()
        assert (repo / "README.md").read_text() == "# project\n"  # reads go on
        (repo / "debug.log").write_text("ignored paths need no lease\n")
        fresh_coordinator.start(port=port)
        wait_for(lambda: httpx.get(fresh_coordinator.url + "/v1/health", timeout=2).is_success,
                 what="coordinator back")  # fmt: skip
        wait_for(lambda: run("sh", "-c", "echo back >> src/app.py", cwd=repo, check=False).returncode == 0,
                 timeout=20, what="writes allowed again")  # fmt: skip
    finally:
        carol.stop()


def test_processes_inside_the_repo_before_mounting_are_named(
    mount_agent: MountFactory, tmp_path: Path, origin: Path
) -> None:
    repo = tmp_path / "alice"
    run("git", "clone", "-q", origin, repo)
    sleeper = subprocess.Popen(["sleep", "120"], cwd=repo)
    try:
        alice = mount_agent("alice", clone=False)
        assert f"sleep (pid {sleeper.pid}, working directory)" in alice.output()
        assert (
            f"BYPASSING: sleep (pid {sleeper.pid}"
            in alice.leasefs("status", str(alice.repo)).stdout
        )
    finally:
        sleeper.kill()
        sleeper.wait(10)


def test_a_grant_whose_content_cannot_be_fetched_is_given_back(
    mount_agent: MountFactory, coordinator: CoordinatorProcess
) -> None:
    """Writing on top of the old content would bury the newer version: the write fails and
    the lease goes back at once instead of blocking the others for a TTL."""
    with TcpProxy(coordinator.port) as proxy:
        alice = mount_agent("alice", coordinator_url=proxy.url)
        bob = mount_agent("bob")
        proxy.cut()  # alice misses bob's version...
        (bob.repo / "src" / "app.py").write_text("print('bob')\n")
        wait_for(lambda: ("version.created", "bob") in audit_actions(
            coordinator.url, bob.workspace, "src/app.py"), what="bob's version")  # fmt: skip
        digest = hashlib.sha256(b"print('bob')\n").hexdigest()
        (coordinator.data_dir / "blobs" / digest[:2] / digest).unlink()  # ...and its blob is gone
        proxy.heal()
        try:
            with open(alice.repo / "src" / "app.py", "a") as f:
                f.write("# alice\n")
        except OSError as exc:
            assert exc.errno == errno.EIO, exc
        else:
            raise AssertionError("alice wrote on top of content older than the latest version")
        assert (alice.repo / "src" / "app.py").read_text() == "print('v1')\n"
        assert "granted, but the latest content could not be brought in" in alice.output()
        # Given back at once: bob (who does not wait) gets the file again.
        wait_for(lambda: ("lease.released", "alice") in audit_actions(
            coordinator.url, bob.workspace, "src/app.py"), what="alice's lease given back")  # fmt: skip
        (bob.repo / "src" / "app.py").write_text("print('bob again')\n")
