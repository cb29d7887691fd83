"""Stop or kill the coordinator and start it again on the same data: nothing is forgotten."""

from __future__ import annotations

import pytest

from leasefs import Client, LeaseHeld
from leasefs.wire import VersionCreate
from tests.helpers import CoordinatorProcess, take_events


@pytest.mark.parametrize("how", ["graceful", "sigkill"])
async def test_restart_keeps_leases_versions_blobs_and_audit(
    fresh_coordinator: CoordinatorProcess, how: str
) -> None:
    async with Client(fresh_coordinator.url) as alice, Client(fresh_coordinator.url) as bob:
        await alice.create_workspace("team")
        await alice.register("team", "alice")
        await bob.register("team", "bob")
        grant = await alice.acquire(["keep.py", "other.py"], ttl_s=120, work="long job")
        blob = await alice.upload_blob(b"content that must survive\n")
        version = await alice.create_version(
            VersionCreate(path="keep.py", hash=blob.hash, token=grant.leases[0].token)
        )
        holders_before = await bob.holders()
        audit_before = await bob.audit()
        events_before = await take_events(bob, 5)

    if how == "graceful":
        fresh_coordinator.stop()
    else:
        fresh_coordinator.kill()
    fresh_coordinator.start()

    async with (
        Client(fresh_coordinator.url, alice.token) as alice2,
        Client(fresh_coordinator.url, bob.token) as bob2,
    ):
        assert await bob2.holders() == holders_before  # same holder, token and expiry
        with pytest.raises(LeaseHeld):
            await bob2.acquire(["keep.py"])
        assert await bob2.latest_version("keep.py") == version
        assert await bob2.read_blob(blob.hash) == b"content that must survive\n"
        assert (await bob2.audit())[: len(audit_before)] == audit_before
        renewed = await alice2.renew()
        assert {lease.token for lease in renewed.leases} == {grant.leases[0].token}
        await alice2.release(renewed.leases)
        resumed = await take_events(bob2, 2, after=events_before[-1].id)
        assert [e.type for e in events_before] == [
            "agent.joined",
            "agent.joined",
            "lease.granted",
            "lease.granted",
            "version.created",
        ]
        assert [(e.type, e.path) for e in resumed] == [
            ("lease.released", "keep.py"),
            ("lease.released", "other.py"),
        ]
        assert resumed[0].id > events_before[-1].id


async def test_expired_while_down_is_expired_after_restart(
    fresh_coordinator: CoordinatorProcess,
) -> None:
    import trio

    async with Client(fresh_coordinator.url) as alice:
        await alice.create_workspace("team")
        await alice.register("team", "alice")
        await alice.acquire(["short.py"], ttl_s=0.5)
    fresh_coordinator.kill()
    await trio.sleep(0.8)
    fresh_coordinator.start()
    async with Client(fresh_coordinator.url, alice.token) as alice2:
        # Reads hide a lease past its expiry at once; the reaper records the expiry soon after.
        with trio.fail_after(10):
            while len(actions := [e.action for e in await alice2.audit(path="short.py")]) < 2:
                await trio.sleep(0.05)
        assert actions == ["lease.granted", "lease.expired"]
        assert (await alice2.holders(["short.py"]))[0].lease is None
