"""Released content streams into every other mount: edits, new files, deletions, renames."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import threading
import time
from pathlib import Path

import pytest
import trio

from leasefs._client import Client
from leasefs.wire import VersionCreate
from tests.helpers import CoordinatorProcess, run, wait_for
from tests.mount.conftest import MountFactory


def content(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def test_release_reaches_the_other_mount_and_back(mount_agent: MountFactory) -> None:
    alice, bob = mount_agent("alice"), mount_agent("bob", "--wait", "20")
    (alice.repo / "src" / "app.py").write_text("print('alice')\n")
    wait_for(lambda: content(bob.repo / "src" / "app.py") == "print('alice')\n",
             what="alice's edit in bob's tree")  # fmt: skip
    with open(bob.repo / "src" / "app.py", "a") as f:  # waits if alice's lease is still out
        f.write("print('bob')\n")
    wait_for(lambda: content(alice.repo / "src" / "app.py") == "print('alice')\nprint('bob')\n",
             what="bob's edit in alice's tree")  # fmt: skip
    # No git command was run: both trees just have the latest content.
    assert "src/app.py" in run("git", "status", "--short", cwd=alice.repo).stdout


def test_new_files_deletions_and_renames_propagate(mount_agent: MountFactory) -> None:
    alice, bob = mount_agent("alice"), mount_agent("bob")
    (alice.repo / "docs").mkdir()
    (alice.repo / "docs" / "guide.md").write_text("# guide\n")
    (alice.repo / "README.md").rename(alice.repo / "README.rst")
    (alice.repo / ".gitignore").unlink()
    wait_for(lambda: content(bob.repo / "docs" / "guide.md") == "# guide\n", what="new file")
    wait_for(lambda: content(bob.repo / "README.rst") == "# project\n", what="renamed file")
    wait_for(lambda: not (bob.repo / "README.md").exists(), what="rename's old name gone")
    wait_for(lambda: not (bob.repo / ".gitignore").exists(), what="deletion")


def test_listings_in_the_other_mount_follow_new_deleted_and_renamed_files(
    mount_agent: MountFactory,
) -> None:
    alice, bob = mount_agent("alice"), mount_agent("bob")
    before = sorted(os.listdir(bob.repo))  # the kernel keeps bob's listings from here
    assert "README.md" in before and ".gitignore" in before
    assert "app.py" in os.listdir(bob.repo / "src")
    (alice.repo / "src" / "new.py").write_text("x = 1\n")
    (alice.repo / "README.md").rename(alice.repo / "README.rst")
    (alice.repo / ".gitignore").unlink()
    expected = sorted({*before, "README.rst"} - {"README.md", ".gitignore"})
    wait_for(lambda: sorted(os.listdir(bob.repo)) == expected, what="rename and deletion listed")
    wait_for(lambda: "new.py" in os.listdir(bob.repo / "src"), what="new file listed")


def test_a_file_kept_open_past_the_grace_goes_back_one_grace_after_its_close(
    mount_agent: MountFactory,
) -> None:
    alice, bob = mount_agent("alice"), mount_agent("bob")  # idle grace 0.5 s
    with open(alice.repo / "src" / "app.py", "w") as f:
        f.write("print('kept open')\n")
        f.flush()
        time.sleep(2)  # four graces with the only lease open: nothing to release meanwhile
        assert content(bob.repo / "src" / "app.py") == "print('v1')\n"
    wait_for(lambda: content(bob.repo / "src" / "app.py") == "print('kept open')\n",
             what="the lease given back after the close")  # fmt: skip


def test_every_lease_of_a_burst_of_new_files_goes_back(mount_agent: MountFactory) -> None:
    alice, bob = mount_agent("alice"), mount_agent("bob")  # idle grace 0.5 s
    names = [f"gen/f{i:03d}.txt" for i in range(60)]
    for i, name in enumerate(names):  # graces ending one after another, while more start
        (alice.repo / name).parent.mkdir(exist_ok=True)
        (alice.repo / name).write_text(f"{i}\n")
        if i % 20 == 19:
            time.sleep(0.3)
    wait_for(lambda: all(content(bob.repo / n) == f"{i}\n" for i, n in enumerate(names)),
             timeout=30, what="every new file in bob's tree")  # fmt: skip

    def held() -> list[str]:
        status = json.loads(alice.leasefs("status", str(alice.repo), "--json").stdout)[0]
        return [h["path"] for h in status["held"]]

    wait_for(lambda: not held(), what="every lease of the burst given back")


def test_mode_changes_propagate(mount_agent: MountFactory) -> None:
    alice, bob = mount_agent("alice"), mount_agent("bob")
    script = alice.repo / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    wait_for(lambda: (bob.repo / "run.sh").exists() and (bob.repo / "run.sh").stat().st_mode & 0o777 == 0o755,
             what="executable script in bob's tree")  # fmt: skip


def test_wait_blocks_then_writes_on_top_of_the_holders_content(mount_agent: MountFactory) -> None:
    alice, bob = mount_agent("alice"), mount_agent("bob", "--wait", "30")
    target = "src/app.py"
    held = open(alice.repo / target, "w")  # noqa: SIM115 - held open across the test's steps
    try:
        held.write("alice line 1\n")
        held.flush()
        bob_write = subprocess.Popen(["sh", "-c", f"echo 'bob line' >> {target}"], cwd=bob.repo)
        time.sleep(1.0)
        assert bob_write.poll() is None, "bob's write must wait while alice holds the file"
        held.write("alice line 2\n")
    finally:
        held.close()
    assert bob_write.wait(timeout=30) == 0
    expected = "alice line 1\nalice line 2\nbob line\n"
    assert content(bob.repo / target) == expected
    wait_for(lambda: content(alice.repo / target) == expected, what="bob's line in alice's tree")


def test_a_blocked_wait_does_not_stall_the_rest_of_the_mount(mount_agent: MountFactory) -> None:
    alice, bob = mount_agent("alice"), mount_agent("bob", "--wait", "8")
    with open(alice.repo / "src" / "app.py", "a") as held:
        held.write("# alice holds it\n")  # the first write takes the lease (the open did not)
        held.flush()
        blocked = subprocess.Popen(["sh", "-c", "echo x >> src/app.py"], cwd=bob.repo)
        try:
            time.sleep(0.5)
            started = time.monotonic()
            # Other files, reads, listings and other processes carry on meanwhile. (Not what
            # touches app.py itself: the waiting write holds the kernel's lock on its inode and
            # pages, so a close(2) or a read of its last page in this mount waits with it.)
            assert (bob.repo / "README.md").read_text() == "# project\n"
            (bob.repo / "other.txt").write_text("free\n")
            assert "other.txt" in os.listdir(bob.repo)
            assert run("cat", "README.md", cwd=bob.repo, timeout=20).stdout == "# project\n"
            run("ls", "-l", "src", cwd=bob.repo, timeout=20)
            assert time.monotonic() - started < 5
            assert blocked.poll() is None
        finally:
            assert blocked.wait(timeout=30) != 0  # gave up with EBUSY after --wait


def test_concurrent_writers_to_different_files_both_land(mount_agent: MountFactory) -> None:
    alice, bob = mount_agent("alice"), mount_agent("bob")

    def edit(repo: Path, name: str) -> None:
        for i in range(5):
            (repo / f"{name}.txt").write_text(f"{name} {i}\n")

    threads = [threading.Thread(target=edit, args=(alice.repo, "a")),
               threading.Thread(target=edit, args=(bob.repo, "b"))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    wait_for(lambda: content(alice.repo / "b.txt") == "b 4\n", what="bob's file at alice")
    wait_for(lambda: content(bob.repo / "a.txt") == "a 4\n", what="alice's file at bob")


def test_readers_never_see_a_file_vanish_while_versions_move_in(mount_agent: MountFactory) -> None:
    alice, bob = mount_agent("alice", "--idle-grace", "0.05"), mount_agent("bob")
    target = bob.repo / "src" / "app.py"
    stop = threading.Event()
    failures: list[str] = []
    reads = 0

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                os.stat(target)
                with open(target) as f:
                    f.read()
                reads += 1
            except OSError as exc:
                failures.append(repr(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(10):
            (alice.repo / "src" / "app.py").write_text(f"print({i})\n")
            wait_for(lambda i=i: content(target) == f"print({i})\n", what=f"version {i} at bob")
    finally:
        stop.set()
        thread.join(10)
    assert reads > 100
    assert failures == [], f"{len(failures)} failed reads, e.g. {failures[:3]}"


def test_a_waiting_writer_recalls_the_lease_instead_of_waiting_out_the_grace(
    mount_agent: MountFactory,
) -> None:
    alice = mount_agent("alice", "--idle-grace", "120")  # without recall, bob would wait 2 min
    bob = mount_agent("bob", "--wait", "60")
    (alice.repo / "src" / "app.py").write_text("print('alice')\n")  # closed: held for the grace
    assert "src/app.py" in alice.leasefs("status", str(alice.repo)).stdout
    started = time.monotonic()
    run("sh", "-c", "echo 'print(\"bob\")' >> src/app.py", cwd=bob.repo, timeout=50)
    assert time.monotonic() - started < 60, "the write waited out the grace: no recall"
    assert content(bob.repo / "src" / "app.py") == "print('alice')\nprint(\"bob\")\n"


@pytest.mark.parametrize("transport", [(), ("--file-handles",)], ids=["inodes", "handles"])
def test_two_agents_appending_to_one_file_take_turns(
    mount_agent: MountFactory, transport: tuple[str, ...]
) -> None:
    """Each waiting agent recalls the other's lease, so neither starves even while the holder
    keeps writing: every append lands, in one file, within the wait bound. Whether the mount
    sees each close (file handles) or finds open writers in /proc (without)."""
    alice = mount_agent("alice", "--wait", "10", *transport)
    bob = mount_agent("bob", "--wait", "10", *transport)
    refused: list[tuple[str, int | None]] = []
    written: dict[str, list[str]] = {"alice": [], "bob": []}
    stop = threading.Event()

    def append(mount: object) -> None:
        repo, name = mount.repo, mount.agent  # type: ignore[attr-defined]
        seq = 0
        while not stop.is_set():
            seq += 1
            try:
                with open(repo / "README.md", "a") as f:
                    f.write(f"{name} {seq}\n")
            except OSError as exc:
                refused.append((name, exc.errno))
            else:
                written[name].append(f"{name} {seq}")
            time.sleep(0.02)

    threads = [threading.Thread(target=append, args=(m,), daemon=True) for m in (alice, bob)]
    for thread in threads:
        thread.start()
    time.sleep(12)
    stop.set()
    for thread in threads:
        thread.join(60)
    assert not refused, f"writes refused while the other agent held the file: {refused}"
    assert len(written["alice"]) > 20 and len(written["bob"]) > 20, {
        k: len(v) for k, v in written.items()
    }
    expected = set(written["alice"] + written["bob"])
    wait_for(lambda: expected <= set((alice.repo / "README.md").read_text().splitlines()),
             timeout=30, what="every append in alice's tree")  # fmt: skip
    wait_for(lambda: expected <= set((bob.repo / "README.md").read_text().splitlines()),
             timeout=30, what="every append in bob's tree")  # fmt: skip


def test_appends_racing_incoming_versions_never_fail(mount_agent: MountFactory) -> None:
    """Three agents append at random to shared files while each other's versions keep
    replacing those files in their trees: an open that meets a file replaced since the
    kernel's lookup is redone on the replacement, never refused and never lost; a grant that
    brings a version newer than the event stream has delivered yet is applied, not taken for
    a conflict."""
    mounts = [mount_agent(name, "--wait", "10") for name in ("alice", "bob", "carol")]
    files = ["src/app.py", "README.md", "notes/a.md"]
    (mounts[0].repo / "notes").mkdir()
    (mounts[0].repo / "notes" / "a.md").write_text("# a\n")
    for mount in mounts:
        wait_for(lambda m=mount: (m.repo / "notes" / "a.md").exists(), timeout=30,
                 what=f"the notes in {mount.agent}'s tree")  # fmt: skip
    failures: list[tuple[str, str, int | None]] = []
    written: list[tuple[str, str]] = []
    stop = threading.Event()

    def append(repo: Path, name: str, seed: int) -> None:
        rng = random.Random(seed)
        seq = 0
        while not stop.is_set():
            seq += 1
            path = rng.choice(files)
            try:
                with open(repo / path, "a") as f:
                    f.write(f"{name} {seq}\n")
            except OSError as exc:
                failures.append((name, path, exc.errno))
            else:
                written.append((path, f"{name} {seq}"))
            time.sleep(rng.uniform(0, 0.05))

    threads = [
        threading.Thread(target=append, args=(m.repo, m.agent, i), daemon=True)
        for i, m in enumerate(mounts)
    ]
    for thread in threads:
        thread.start()
    time.sleep(10)
    stop.set()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    for mount in mounts:
        for path in files:
            lines = {line for p, line in written if p == path}

            def landed(m: object = mount, p: str = path, want: set[str] = lines) -> bool:
                return want <= set((m.repo / p).read_text().splitlines())  # type: ignore[attr-defined]

            try:
                wait_for(landed, timeout=30, what=f"every append to {path} in {mount.agent}'s tree")
            except TimeoutError:
                have = set((mount.repo / path).read_text().splitlines())
                conflicts = [str(c) for m in mounts for c in m.repo.rglob("*conflict*")]
                raise AssertionError((sorted(lines - have), conflicts)) from None
    # Nobody edited beside a lease, so nothing may have been taken for a conflict.
    assert not [c for m in mounts for c in m.repo.rglob("*.conflict-*")]


def test_a_grant_after_versions_missed_while_waiting_is_applied_not_kept_apart(
    mount_agent: MountFactory,
) -> None:
    """Carol and then bob wait for alice's file. Bob's grant brings carol's version, based on
    alice's, which bob never applied (it came while bob waited): bob's file is still the
    checked-out one that alice's version was based on, so it has nothing of its own to lose
    and takes carol's version, instead of keeping the old file and a conflict copy."""
    alice = mount_agent("alice")
    carol = mount_agent("carol", "--wait", "30")
    bob = mount_agent("bob", "--wait", "30")
    waiting: list[subprocess.Popen[bytes]] = []
    try:
        with open(alice.repo / "README.md", "a") as held:
            held.write("alice\n")
            held.flush()
            for mount in (carol, bob):
                cmd = f"echo {mount.agent} >> README.md"
                waiting.append(subprocess.Popen(["sh", "-c", cmd], cwd=mount.repo))
                time.sleep(1.0)  # carol queues first
            assert all(p.poll() is None for p in waiting), "the appends must wait for alice"
    finally:
        for process in waiting:
            assert process.wait(timeout=60) == 0
    expected = "# project\nalice\ncarol\nbob\n"
    for mount in (alice, bob, carol):
        wait_for(lambda m=mount: content(m.repo / "README.md") == expected, timeout=30,
                 what=f"every append in {mount.agent}'s tree")  # fmt: skip
        assert not list(mount.repo.glob("*conflict*")), mount.agent


def test_a_version_built_on_an_older_state_is_kept_apart_not_applied(
    mount_agent: MountFactory, coordinator: CoordinatorProcess, workspace_name: str
) -> None:
    """Dave (an agent talking to the coordinator directly) records a version built on the
    checked-out README, not on alice's newer one, as an agent does that kept its own file in
    a conflict. Applying it in alice's tree would bury her line: it is saved beside it."""
    alice = mount_agent("alice")
    (alice.repo / "README.md").write_text("# project\nalice\n")
    original = hashlib.sha256(b"# project\n").hexdigest()

    async def write_beside_alice() -> int:
        async with Client(coordinator.url, timeout=30) as dave:
            await dave.register(workspace_name, "dave")
            grant = await dave.acquire(["README.md"], wait_s=20)  # recalls alice's lease
            assert grant.versions["README.md"] is not None  # alice's version is the latest
            blob = await dave.upload_blob(b"# project\ndave\n")
            token = grant.leases[0].token
            built_on_the_original = VersionCreate(
                path="README.md", hash=blob.hash, base_hash=original, token=token
            )
            version = await dave.create_version(built_on_the_original)
            await dave.release(grant.leases)
            return version.id

    version_id = trio.run(write_beside_alice)
    copy = alice.repo / f"README.conflict-dave-v{version_id}.md"
    wait_for(copy.exists, timeout=30, what="dave's version saved beside alice's file")
    assert content(copy) == "# project\ndave\n"
    assert content(alice.repo / "README.md") == "# project\nalice\n"


def test_a_write_to_a_file_a_version_replaced_since_its_open_lands_on_the_version(
    mount_agent: MountFactory,
) -> None:
    """Opening for writing takes no lease, so another agent's version may move in under an
    open file. A write into the file it replaced would be lost from the tree: it goes on top
    of the version instead (as after an open a moment later), under the lease, and reaches
    the other agent."""
    alice, bob = mount_agent("alice"), mount_agent("bob")
    appending = os.open(alice.repo / "src" / "app.py", os.O_WRONLY | os.O_APPEND)  # no write yet
    try:
        (bob.repo / "src" / "app.py").write_text("print('bob')\n")
        bob.leasefs("release", str(bob.repo / "src" / "app.py"))
        wait_for(lambda: content(alice.repo / "src" / "app.py") == "print('bob')\n",
                 what="bob's version in alice's tree")  # fmt: skip
        assert os.write(appending, b"# alice, on top\n") == len(b"# alice, on top\n")
    finally:
        os.close(appending)
    expected = "print('bob')\n# alice, on top\n"
    assert content(alice.repo / "src" / "app.py") == expected
    alice.leasefs("release", str(alice.repo / "src" / "app.py"))
    wait_for(lambda: content(bob.repo / "src" / "app.py") == expected,
             what="alice's line in bob's tree")  # fmt: skip
