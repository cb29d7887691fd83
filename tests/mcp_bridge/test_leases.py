"""The lease tools called directly with bridges against a real coordinator."""

from __future__ import annotations

import pytest
import trio

from leasefs import Client, LeaseHeld
from leasefs.wire import VersionCreate
from mcp_bridge.tools import leases, work
from tests.mcp_bridge.conftest import BridgeFactory


async def _write(client: Client, path: str, data: bytes) -> None:
    """A version of ``path`` with ``data``, written and released as a mount would."""
    [lease] = (await client.acquire([path])).leases
    blob = await client.upload_blob(data)
    await client.create_version(VersionCreate(path=path, hash=blob.hash, token=lease.token))
    await client.release([lease])


async def test_a_lease_held_by_one_bridge_is_refused_to_another_naming_the_holder(
    make_bridge: BridgeFactory,
) -> None:
    alice, bob = await make_bridge("alice"), await make_bridge("bob")
    got = await leases.lease_acquire(alice, ["src/a.py"])
    assert [lease.path for lease in got.leases] == ["src/a.py"]
    assert got.contents == {"src/a.py": None} and got.note == "1 lease(s) held"
    with pytest.raises(LeaseHeld, match="alice") as refused:
        await leases.lease_acquire(bob, ["src/b.py", "src/a.py"])
    assert [h.holder.name for h in refused.value.holders] == ["alice"]
    free = await bob.client.holders(["src/b.py"])
    assert [s.lease for s in free] == [None], "all or none: no lease on src/b.py either"


async def test_the_grant_carries_text_contents_up_to_the_size_limit(
    make_bridge: BridgeFactory,
) -> None:
    alice, bob = await make_bridge("alice"), await make_bridge("bob")
    await _write(alice.client, "text.md", "héllo\n".encode())
    await _write(alice.client, "binary.bin", b"\xff\xfe\x00")
    await _write(alice.client, "big.txt", b"x" * (leases.MAX_INLINE_BYTES + 1))
    got = await leases.lease_acquire(bob, ["text.md", "binary.bin", "big.txt"])
    assert got.contents == {"text.md": "héllo\n", "binary.bin": None, "big.txt": None}


async def test_lease_wait_is_served_when_the_holder_releases(make_bridge: BridgeFactory) -> None:
    alice, bob = await make_bridge("alice"), await make_bridge("bob")
    await leases.lease_acquire(alice, ["notes.md"])
    started = await work.start(bob, "notes", ["notes.md"])
    results = []

    async def bob_waits() -> None:
        results.append(await leases.lease_wait(bob, ["notes.md"], timeout_s=30))

    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bob_waits)
            await trio.sleep(0.5)
            assert not results, "bob must wait while alice holds the file"
            assert await alice.release_all() == ["notes.md"]
    [got] = results
    assert [(lease.path, lease.holder.name) for lease in got.leases] == [("notes.md", "bob")]
    assert got.leases[0].work == f"work {started.work.id}"
    assert got.note == "1 lease(s) held after waiting"
