"""Symbolic links inside a repository never let a version or a snapshot out of it.

A path that arrives from another agent is a name in the repository. Where this clone has a
symbolic link on the way (``vendor -> ~/.ssh``, brought in by a git pull), following it would
write into the victim's home; the mount keeps its tree as it is and reports a conflict.
Likewise a snapshot never reads through a link the holder swapped in under a leased path.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import trio

from leasefs import Client
from tests.helpers import audit_actions, wait_for
from tests.mount.conftest import MountFactory


def test_a_version_never_lands_outside_through_a_symlinked_directory(
    mount_agent: MountFactory, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    alice, bob = mount_agent("alice"), mount_agent("bob")
    os.symlink(outside, bob.repo / "vendor")  # bob's tree: vendor leads out of the repository
    wait_for(lambda: ("lease.released", "bob") in audit_actions(bob.url, bob.workspace, "vendor"),
             what="bob's lease on the link released")  # fmt: skip

    (alice.repo / "vendor").mkdir()  # alice's tree: an ordinary directory of that name
    (alice.repo / "vendor" / "authorized_keys").write_text("ssh-ed25519 AAAA mallory\n")
    (alice.repo / "vendor" / "later.txt").write_text("second file\n")

    for path in ("vendor/authorized_keys", "vendor/later.txt"):
        wait_for(
            lambda p=path: (
                ("conflict.detected", "bob") in audit_actions(alice.url, alice.workspace, p)
            ),
            timeout=30,
            what=f"bob's mount refusing the version of {path}",
        )
    assert list(outside.iterdir()) == [], "nothing may be written outside the repository"
    assert os.readlink(bob.repo / "vendor") == str(outside), "bob's tree is left as it was"
    status = bob.leasefs("status", str(bob.repo)).stdout
    assert "vendor/authorized_keys" in status


def test_a_snapshot_never_reads_through_a_symlink_swapped_in(
    mount_agent: MountFactory, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = b"the contents of someone's private key\n"
    (outside / "notes.md").write_bytes(secret)
    alice, bob = mount_agent("alice", "--idle-grace", "3"), mount_agent("bob")

    (alice.repo / "docs").mkdir()
    (alice.repo / "docs" / "notes.md").write_text("public notes\n")
    # While the lease (and its snapshot to come) is still out, swap the directory for a link.
    (alice.repo / "docs").rename(alice.repo / "docs.old")
    os.symlink(outside, alice.repo / "docs")

    # docs/ was new: its file was leased under the folder lease, which goes back after it.
    wait_for(
        lambda: ("lease.released", "alice") in audit_actions(alice.url, alice.workspace, "docs/"),
        timeout=30,
        what="alice's folder lease on docs/ (and so docs/notes.md) released",
    )
    bobs = bob.repo / "docs" / "notes.md"
    assert not bobs.exists() or bobs.read_bytes() != secret

    async def stored() -> bool:
        async with Client(alice.url) as auditor:
            await auditor.register(alice.workspace, "auditor")
            return await auditor.has_blob(hashlib.sha256(secret).hexdigest())

    assert not trio.run(stored), "content from outside the repository reached the coordinator"
