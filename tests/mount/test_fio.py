"""Data integrity under random I/O: fio with ``--verify=crc32c`` inside mounts, handed from
one agent to another.

fio writes blocks at random offsets (plain writes, then writes through a shared mmap), reads
them back and checks every block's checksum; after each hand-off the other agent's fio
verifies the same files in its own tree (``--verify_only``), so the content that travelled
is checked block by block, not only by a hash of the whole file. Meanwhile the second agent
keeps taking and giving back a lease of its own, so releases run beside the random I/O.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from pathlib import Path

import pytest

from tests.helpers import AgentMount, run, wait_for
from tests.mount.conftest import MountFactory

pytestmark = pytest.mark.skipif(shutil.which("fio") is None, reason="fio is not installed")

FILES = 2
SIZE = "8m"  # per file


def fio(mount: AgentMount, engine: str, *extra: str) -> dict[str, object]:
    """One fio run in ``mount``'s ``fio/`` folder; fails the test on any fio error."""
    folder = mount.repo / "fio"
    folder.mkdir(exist_ok=True)
    done = run(
        "fio", f"--name={engine}", f"--directory={folder}", f"--ioengine={engine}",
        f"--nrfiles={FILES}", f"--size={SIZE}", "--bs=4k", "--rw=randwrite",
        "--verify=crc32c", "--verify_fatal=1", "--randrepeat=1", "--output-format=json",
        *extra, cwd=mount.repo.parent, check=False, timeout=300,  # its state files go there
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report: dict[str, object] = json.loads(done.stdout[done.stdout.index("{") :])
    jobs = report["jobs"]
    assert isinstance(jobs, list) and jobs and all(job["error"] == 0 for job in jobs), jobs
    return report


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def arrived(source: AgentMount, target: AgentMount) -> bool:
    try:
        return digests(target.repo / "fio") == digests(source.repo / "fio")
    except FileNotFoundError:
        return False


def test_random_writes_verify_in_the_writer_and_after_each_hand_off(
    mount_agent: MountFactory,
) -> None:
    alice = mount_agent("alice", "--wait", "20")
    bob = mount_agent("bob", "--wait", "20")
    stop = threading.Event()
    releases = 0

    def bob_keeps_releasing() -> None:
        nonlocal releases
        while not stop.is_set():
            with open(bob.repo / "src" / "app.py", "a") as f:
                f.write(f"bob {releases}\n")
            bob.leasefs("release", str(bob.repo / "src" / "app.py"))
            releases += 1

    beside = threading.Thread(target=bob_keeps_releasing, daemon=True)
    beside.start()
    try:
        fio(alice, "psync")  # write, then read back and check every block
    finally:
        stop.set()
        beside.join(120)
    assert releases > 0
    alice.leasefs("release", str(alice.repo))
    wait_for(lambda: arrived(alice, bob), timeout=60, what="alice's fio files in bob's tree")
    fio(bob, "psync", "--verify_only")  # every block as alice wrote it

    # Bob takes the files over and rewrites them through a shared mmap; alice checks.
    fio(bob, "mmap", "--randseed=7")
    bob.leasefs("release", str(bob.repo))
    wait_for(lambda: arrived(bob, alice), timeout=60, what="bob's fio files in alice's tree")
    fio(alice, "mmap", "--randseed=7", "--verify_only")

    # A truncation travels as exactly what is left.
    first = sorted((alice.repo / "fio").iterdir())[0]
    with open(first, "r+b") as f:
        f.truncate(1 << 20)
    alice.leasefs("release", str(alice.repo))
    wait_for(lambda: arrived(alice, bob), timeout=60, what="the truncated file in bob's tree")
    assert (bob.repo / "fio" / first.name).stat().st_size == 1 << 20
    assert not [line for line in alice.output().splitlines() if "conflict" in line.lower()]
