"""Folder leases through real mounts: a new folder's files cost no round trip each, reach the
other mount byte-exact, and another agent wanting one of them gets it (or waits only for the
files still being written) without a path ever being written by two agents."""

from __future__ import annotations

import errno
import json
import subprocess
import time
from pathlib import Path

import trio

from leasefs._client import Client
from tests.helpers import run, wait_for
from tests.helpers.mounts import AgentMount
from tests.mount.conftest import MountFactory

BURST = 150


def held(mount: AgentMount) -> list[str]:
    status = json.loads(mount.leasefs("status", str(mount.repo), "--json").stdout)[0]
    return [h["path"] for h in status["held"]]


def granted_paths(mount: AgentMount) -> list[str]:
    """Every path the coordinator granted a lease on in the workspace, in order."""
    record = mount.record()
    assert record is not None

    async def audit() -> list[str]:
        async with Client(record.coordinator, record.token) as client:
            entries = await client.audit(limit=5000)
        return [str(e.path) for e in entries if e.action == "lease.granted"]

    return trio.run(audit)


def content(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def make_burst(repo: Path, folder: str) -> dict[str, bytes]:
    """A new folder with BURST files of distinct content, written by one python process."""
    files = {f"{folder}/sub/f{i:03d}.bin": bytes([i % 256]) * (i + 1) for i in range(BURST)}
    script = (
        "import os, sys, json\n"
        "files = json.loads(sys.stdin.read())\n"
        "for name, size in files.items():\n"
        "    os.makedirs(os.path.dirname(name), exist_ok=True)\n"
        "    with open(name, 'wb') as f:\n"
        "        f.write(bytes([size % 256]) * (size + 1))\n"
    )
    sizes = {name: i for i, name in enumerate(files)}
    subprocess.run(["python3", "-c", script], input=json.dumps(sizes), text=True, cwd=repo,
                   check=True, timeout=120)  # fmt: skip
    return files


def test_a_burst_in_a_new_folder_takes_one_lease_and_reaches_the_other_mount(
    mount_agent: MountFactory,
) -> None:
    alice, bob = mount_agent("alice", "--idle-grace", "30"), mount_agent("bob")
    files = make_burst(alice.repo, "gen")
    mine = held(alice)
    assert "gen/" in mine, mine
    assert len([p for p in mine if p.startswith("gen/sub/f")]) == BURST
    # One round trip for the whole burst: the folder and its path, nothing per file.
    assert [p for p in granted_paths(alice) if p.startswith("gen")] == ["gen", "gen/"]
    alice.leasefs("release", str(alice.repo))
    assert held(alice) == []
    wait_for(lambda: all(content(bob.repo / n) == data for n, data in files.items()),
             timeout=60, what="every file of the burst in bob's tree, byte-exact")  # fmt: skip


def test_another_agent_gets_a_finished_file_at_once_and_waits_only_for_one_being_written(
    mount_agent: MountFactory,
) -> None:
    alice = mount_agent("alice", "--idle-grace", "120")  # no grace runs out during the test
    bob = mount_agent("bob", "--wait", "30")
    (alice.repo / "gen").mkdir()
    (alice.repo / "gen" / "done.txt").write_text("alice: done\n")
    writing = open(alice.repo / "gen" / "open.txt", "w")  # noqa: SIM115 - open across steps
    try:
        writing.write("alice: line 1\n")
        writing.flush()
        assert "gen/" in held(alice)
        # bob's tree has no gen/ yet (nothing was released): his new file there is his own.
        (bob.repo / "gen").mkdir()
        started = time.monotonic()
        (bob.repo / "gen" / "bob.txt").write_text("bob\n")  # recalls alice's folder: narrowed
        assert time.monotonic() - started < 25, "bob waited for alice's whole folder"
        wait_for(lambda: "gen/" not in held(alice), what="alice's folder narrowed")
        assert {"gen/done.txt", "gen/open.txt"} <= set(held(alice))
        # The file alice still writes: bob waits until she is done with it.
        bob_write = subprocess.Popen(["sh", "-c", "echo 'bob: after' >> gen/open.txt"],
                                     cwd=bob.repo)  # fmt: skip
        time.sleep(1.0)
        assert bob_write.poll() is None, "bob's write must wait while alice writes the file"
        writing.write("alice: line 2\n")
    finally:
        writing.close()
    assert bob_write.wait(timeout=40) == 0
    expected = "alice: line 1\nalice: line 2\nbob: after\n"
    assert (bob.repo / "gen" / "open.txt").read_text() == expected
    wait_for(lambda: content(alice.repo / "gen" / "open.txt") == expected.encode(),
             what="bob's line in alice's tree")  # fmt: skip
    wait_for(lambda: content(alice.repo / "gen" / "bob.txt") == b"bob\n",
             what="bob's new file in alice's tree")  # fmt: skip


def test_a_file_under_a_held_folder_is_refused_after_the_wait_and_left_byte_identical(
    mount_agent: MountFactory,
) -> None:
    alice = mount_agent("alice", "--idle-grace", "120")
    bob = mount_agent("bob", "--wait", "2")  # long enough for alice's "gen" to be recalled
    (alice.repo / "gen").mkdir()
    writing = open(alice.repo / "gen" / "a.txt", "w")  # noqa: SIM115 - open across steps
    try:
        writing.write("alice\n")
        writing.flush()
        # bob's tree gets gen/a.txt only when alice gives it back; he makes his own first.
        (bob.repo / "gen").mkdir()  # waits for alice's lease on "gen" (quiet since her mkdir)
        refused = run("bash", "-c", "echo bob > gen/a.txt", cwd=bob.repo, check=False)
        assert refused.returncode != 0 and "Device or resource busy" in refused.stderr, refused
        assert (
            not (bob.repo / "gen" / "a.txt").exists()
            or (bob.repo / "gen" / "a.txt").read_bytes() == b""
        )
        try:
            (bob.repo / "gen" / "a.txt").write_text("bob\n")
        except OSError as exc:
            assert exc.errno == errno.EBUSY
        else:
            raise AssertionError("bob wrote a file alice holds")
    finally:
        writing.close()
    assert (alice.repo / "gen" / "a.txt").read_text() == "alice\n"
