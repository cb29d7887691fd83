"""The lease keeper's release against a real coordinator, without a mount: the backing
directory is written directly, as the mount's write handler would.

A release records its snapshots in as few requests as the coordinator's limits allow, and
one lease lost meanwhile costs only its own snapshot, never the others'.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from leasefs._client import Client
from leasefs._mount._applier import Applier
from leasefs._mount._keeper import KeeperOptions, LeaseKeeper
from tests.conftest import AgentFactory


async def _nothing_to_do(path: str, *, wait: bool = True) -> None:
    """The applier's hook for a changed file: there is no kernel cache to drop here."""


async def _nobody_writing() -> frozenset[str]:
    """No process holds any file open for writing."""
    return frozenset()


@pytest.fixture
async def root_fd(tmp_path: Path) -> AsyncIterator[int]:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)


async def keeper_for(client: Client, root_fd: int, ttl_s: float = 30.0) -> LeaseKeeper:
    """A keeper that is never `run`: no renewals, no idle release, only what the test asks."""
    me = await client.whoami()
    applier = Applier(
        client, root_fd, agent_id=me.id, branch="main", in_scope=lambda path: True,
        on_changed=_nothing_to_do,
    )  # fmt: skip
    return LeaseKeeper(client, root_fd, applier, KeeperOptions(ttl_s=ttl_s), _nobody_writing)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_one_release_records_hundreds_of_files_of_every_kind(
    make_agent: AgentFactory, tmp_path: Path, root_fd: int
) -> None:
    """More versions than one request takes, small and large contents, a deletion."""
    alice, bob = await make_agent("alice"), await make_agent("bob")
    keeper = await keeper_for(alice, root_fd)
    (tmp_path / "old.txt").write_text("to be deleted\n")
    small = [f"src/m{i:03d}.py" for i in range(600)]
    await keeper.ensure([*small, "big.bin", "old.txt"])
    (tmp_path / "src").mkdir()
    contents = {path: f"x = {i}\n".encode() for i, path in enumerate(small)}
    contents["big.bin"] = os.urandom(300_000)
    for path, data in contents.items():
        (tmp_path / path).write_bytes(data)
    (tmp_path / "old.txt").unlink()

    released = await keeper.release()

    assert sorted(released) == sorted([*contents, "old.txt"])
    assert keeper.held() == [] and keeper.statistics().pending_snapshots == 0
    for path, data in contents.items():
        version = await bob.latest_version(path)
        assert version is not None and version.hash == sha256(data), path
        assert version.author.name == "alice"
    assert await bob.read_blob(sha256(contents["big.bin"])) == contents["big.bin"]
    assert await bob.read_blob(sha256(contents["src/m007.py"])) == b"x = 7\n"
    gone = await bob.latest_version("old.txt")
    assert gone is not None and gone.deleted and gone.base_hash == sha256(b"to be deleted\n")
    assert [status.lease for status in await bob.holders()] == []


async def test_a_lease_lost_before_the_release_costs_only_its_own_snapshot(
    make_agent: AgentFactory, tmp_path: Path, root_fd: int
) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    keeper = await keeper_for(alice, root_fd, ttl_s=1.0)
    await keeper.ensure(["lost.txt"])
    (tmp_path / "lost.txt").write_text("alice's, after her lease ran out\n")
    await trio.sleep(1.5)  # never renewed: the lease runs out on the coordinator
    await bob.acquire(["lost.txt"])
    await keeper.ensure(["kept.txt", "also.txt"])
    (tmp_path / "kept.txt").write_text("kept\n")
    (tmp_path / "also.txt").write_text("also\n")

    released = await keeper.release()

    assert sorted(released) == ["also.txt", "kept.txt"]
    for path in released:
        version = await bob.latest_version(path)
        assert version is not None and version.hash == sha256((tmp_path / path).read_bytes())
    assert await bob.latest_version("lost.txt") is None
    assert (tmp_path / "lost.txt").read_text() == "alice's, after her lease ran out\n"
    holders = {s.path: s.lease.holder.name for s in await bob.holders() if s.lease}
    assert holders == {"lost.txt": "bob"}
