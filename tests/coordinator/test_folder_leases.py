"""Folder leases against a real coordinator: granted only when free, covering every file under
them for grants, versions, releases and who-holds-what, and narrowed on demand so a waiter for
another file goes at once."""

from __future__ import annotations

import pytest
import trio

from leasefs import Client, LeaseHeld, StaleToken
from leasefs._client import LeasefsError
from leasefs.wire import Lease, VersionCreate
from tests.conftest import AgentFactory


async def take_folder(client: Client, folder: str = "gen") -> Lease:
    grant = await client.acquire([folder], folders=[folder + "/"])
    [lease] = [lease for lease in grant.leases if lease.path == folder + "/"]
    return lease


async def record(client: Client, path: str, token: int) -> None:
    blob = await client.upload_blob(path.encode())
    await client.create_version(VersionCreate(path=path, hash=blob.hash, token=token))


async def test_a_free_folder_is_granted_beside_its_path_and_covers_every_file_under_it(
    make_agent: AgentFactory,
) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    folder = await take_folder(alice)
    assert folder.token == (await alice.holders(["gen"]))[0].lease.token  # type: ignore[union-attr]
    for path in ("gen/a.py", "gen/deep/b.py"):
        with pytest.raises(LeaseHeld) as refused:
            await bob.acquire([path])
        assert "gen/ (a folder lease) by alice" in str(refused.value)
        [status] = await bob.holders([path])
        assert status.lease is not None and status.lease.path == "gen/"
        assert status.lease.holder.name == "alice"
    # Beside the folder, nothing is covered: "gen" itself is its own lease, "genx" is free.
    await bob.acquire(["genx/a.py"])
    # The holder records versions under it with the folder's token, and nobody else can.
    await record(alice, "gen/a.py", folder.token)
    with pytest.raises(StaleToken):
        await record(bob, "gen/b.py", folder.token)
    # Giving back a file never narrowed to its own lease deletes nothing: the folder holds on.
    released = await alice.release(
        [Lease.model_validate(folder.model_dump() | {"path": "gen/a.py"})]
    )
    assert released.released == ["gen/a.py"]
    with pytest.raises(LeaseHeld):
        await bob.acquire(["gen/a.py"])
    await alice.release([folder])
    await bob.acquire(["gen/a.py"])


async def test_a_folder_is_not_granted_where_anything_under_it_is_taken(
    make_agent: AgentFactory,
) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    # Someone holds a file under it: the path is granted, the folder is not.
    await bob.acquire(["busy/x.py"])
    grant = await alice.acquire(["busy"], folders=["busy/"])
    assert [lease.path for lease in grant.leases] == ["busy"]
    # A version was recorded under it once: its files are not new.
    done = (await bob.acquire(["old/x.py"])).leases[0]
    await record(bob, "old/x.py", done.token)
    await bob.release([done])
    grant = await alice.acquire(["old"], folders=["old/"])
    assert [lease.path for lease in grant.leases] == ["old"]
    # Someone waits for a file under it (behind a lease elsewhere: nobody holds it).
    await bob.acquire(["elsewhere.py"])
    carol = await make_agent("carol")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: carol.acquire(["elsewhere.py", "line/x.py"], wait_s=20))
            await _until_waiting(alice, "line/x.py")
            grant = await alice.acquire(["line"], folders=["line/"])
            assert [lease.path for lease in grant.leases] == ["line"]
            await bob.release((await bob.renew()).leases)  # carol is served
    # A zone reaches into it.
    await alice.add_zone("zoned/**/*.env", "warn", "secrets")
    grant = await alice.acquire(["zoned"], folders=["zoned/"])
    assert [lease.path for lease in grant.leases] == ["zoned"]
    # A folder under someone else's folder.
    await take_folder(bob, "outer")
    with pytest.raises(LeaseHeld):
        await alice.acquire(["outer/inner"], folders=["outer/inner/"])


async def _until_waiting(client: Client, path: str) -> None:
    with trio.fail_after(10):
        while not (await client.holders([path]))[0].waiters:
            await trio.sleep(0.01)


async def test_narrowing_lets_a_waiter_for_another_file_go_and_recalls_the_kept_ones(
    make_agent: AgentFactory,
) -> None:
    alice, bob, carol = [await make_agent(n) for n in ("alice", "bob", "carol")]
    folder = await take_folder(alice)
    got: dict[str, list[Lease]] = {}

    async def wait_for(client: Client, path: str) -> None:
        got[path] = (await client.acquire([path], wait_s=30)).leases

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait_for, bob, "gen/free.py")
            await _until_waiting(alice, "gen/free.py")
            nursery.start_soon(wait_for, carol, "gen/kept.py")
            await _until_waiting(alice, "gen/kept.py")
            result = await alice.narrow(folder, ["gen/kept.py", "gen/other.py"])
            assert sorted(lease.path for lease in result.leases) == ["gen/kept.py", "gen/other.py"]
            assert {lease.token for lease in result.leases} == {folder.token}
            with trio.fail_after(10):
                while "gen/free.py" not in got:
                    await trio.sleep(0.01)
            assert "gen/kept.py" not in got  # still alice's, under its own lease now
            await record(alice, "gen/kept.py", folder.token)
            await alice.release([lease for lease in result.leases if lease.path == "gen/kept.py"])
    assert got["gen/kept.py"][0].holder.name == "carol"
    actions = [(e.action, e.path) for e in await alice.audit(path="gen/kept.py")]
    assert ("lease.recalled", "gen/kept.py") in actions  # carol's wait moved to the kept lease
    assert [e.action for e in await alice.audit(path="gen/")] == [
        "lease.granted",
        "lease.recalled",
        "lease.recalled",
        "lease.released",
    ]


async def test_narrowing_is_refused_for_a_folder_not_held_and_repeats_safely(
    make_agent: AgentFactory,
) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    folder = await take_folder(alice)
    with pytest.raises(StaleToken):
        await bob.narrow(folder, [])
    with pytest.raises(LeasefsError) as outside:
        await alice.narrow(folder, ["elsewhere.py"])
    assert "not under the folder lease gen/" in str(outside.value)
    first = await alice.narrow(folder, ["gen/a.py"])
    again = await alice.narrow(folder, ["gen/a.py"])  # an answer lost on the way: retried
    assert [lease.path for lease in again.leases] == [lease.path for lease in first.leases]
    with pytest.raises(StaleToken):
        await alice.narrow(folder, ["gen/b.py"])  # b was not kept: nobody holds it now
    await bob.acquire(["gen/b.py"])


async def test_an_expired_folder_covers_nothing(make_agent: AgentFactory) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    grant = await alice.acquire(["tmp"], folders=["tmp/"], ttl_s=1.0)
    folder = next(lease for lease in grant.leases if lease.path == "tmp/")
    with trio.fail_after(15):
        await bob.acquire(["tmp/x.py"], wait_s=10)
    with pytest.raises(StaleToken):
        await record(alice, "tmp/y.py", folder.token)
