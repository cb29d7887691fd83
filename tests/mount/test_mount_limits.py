"""The coordinator's limits as a mount meets them: a clear errno or log line, never a stuck
lease. The module's coordinator accepts blobs of at most 1,000 bytes and two leases per agent."""

from __future__ import annotations

import errno
from collections.abc import Iterator

import pytest

from tests.helpers import CoordinatorProcess, audit_actions, serving, wait_for
from tests.mount.conftest import MountFactory


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoordinatorProcess]:
    """Overrides the session's coordinator for this module's mounts."""
    with serving(
        tmp_path_factory.mktemp("limited"),
        *("--max-blob-bytes", "1000", "--max-leases-per-agent", "2"),
    ) as server:
        yield server


def test_a_file_over_the_blob_limit_is_released_unshared(mount_agent: MountFactory) -> None:
    alice, bob = mount_agent("alice"), mount_agent("bob")
    (alice.repo / "big.bin").write_bytes(b"x" * 5000)
    (alice.repo / "small.txt").write_text("fits\n")
    wait_for(lambda: (bob.repo / "small.txt").exists(), timeout=30, what="the small file")
    wait_for(
        lambda: ("lease.released", "alice") in audit_actions(alice.url, alice.workspace, "big.bin"),
        timeout=30,
        what="the big file's lease given back",
    )
    assert not (bob.repo / "big.bin").exists()
    assert (alice.repo / "big.bin").read_bytes() == b"x" * 5000, "the local file is kept"
    assert "over this coordinator's limit of 1000 bytes" in alice.output()


def test_a_write_beyond_the_lease_limit_fails_with_edquot(mount_agent: MountFactory) -> None:
    alice = mount_agent("alice")
    first = open(alice.repo / "one.txt", "w")  # noqa: SIM115 - held open to keep the lease
    second = open(alice.repo / "two.txt", "w")  # noqa: SIM115
    try:
        with pytest.raises(OSError) as refused:
            open(alice.repo / "three.txt", "w").close()
        assert refused.value.errno == errno.EDQUOT
        assert "--max-leases-per-agent" in alice.output()
    finally:
        first.close()
        second.close()
    wait_for(lambda: _writes(alice.repo / "three.txt"), timeout=30, what="a lease freed again")


def _writes(path: object) -> bool:
    try:
        with open(path, "w") as f:  # type: ignore[call-overload]
            f.write("now it fits\n")
    except OSError:
        return False
    return True
