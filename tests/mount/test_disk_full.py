"""The backing filesystem full: a write fails with ENOSPC as natively, the lease goes back
with what is really on disk, and a version too big for the disk is never half applied."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import run, wait_for
from tests.mount.conftest import MountFactory

SMALL = 8 << 20  # the full disk's size


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An empty folder on a tmpfs of `SMALL` bytes, taken away afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder = tmp_path / "alice"
    folder.mkdir()
    run("mount", "-t", "tmpfs", "-o", f"size={SMALL}", "tmpfs", folder)
    try:
        yield folder
    finally:
        run("umount", folder, check=False)
        run("umount", "-l", folder, check=False)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_full_disk_fails_the_write_and_the_lease_goes_back_with_what_is_there(
    mount_agent: MountFactory, origin: Path, small_disk: Path
) -> None:
    run("git", "clone", "-q", origin, small_disk)
    alice = mount_agent("alice", "--wait", "20")
    bob = mount_agent("bob", "--wait", "20")
    filler = alice.repo / "filler.bin"
    block = os.urandom(1 << 20)
    with pytest.raises(OSError) as full, open(filler, "wb") as f:
        for _ in range(2 * SMALL // len(block)):
            f.write(block)
            f.flush()
    assert full.value.errno == errno.ENOSPC
    on_disk = filler.read_bytes()
    assert 0 < len(on_disk) < SMALL
    alice.leasefs("release", str(alice.repo))
    # What travels is exactly what the disk took: bob gets those bytes.
    wait_for(lambda: (bob.repo / "filler.bin").exists()
             and sha256(bob.repo / "filler.bin") == hashlib.sha256(on_disk).hexdigest(),
             timeout=60, what="the filler as alice's disk holds it, in bob's tree")  # fmt: skip

    # A version bigger than alice's free space is never half applied in her tree.
    (bob.repo / "big.bin").write_bytes(os.urandom(6 << 20))
    bob.leasefs("release", str(bob.repo))
    big = hashlib.sha256((bob.repo / "big.bin").read_bytes()).hexdigest()
    wait_for(lambda: "could not apply big.bin" in alice.output(), timeout=60,
             what="alice's mount saying it could not apply big.bin")  # fmt: skip
    arrived = alice.repo / "big.bin"
    assert not arrived.exists() or sha256(arrived) == big
    assert not [p.name for p in alice.repo.iterdir() if ".leasefs-" in p.name], (
        "a temporary file of the applier was left behind"
    )
    (alice.repo / "README.md").write_text("alice still works\n")  # the mount still serves
    assert (alice.repo / "README.md").read_text() == "alice still works\n"
