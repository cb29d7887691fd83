"""Leases against a real coordinator: exclusion, fencing, fairness, all-or-nothing, expiry."""

from __future__ import annotations

import random

import pytest
import trio

from leasefs import Client, LeaseHeld, StaleToken
from leasefs.wire import AuditEntry
from tests.conftest import AgentFactory

LEASE_EVENTS = ("lease.granted", "lease.released", "lease.expired")


async def lease_history(client: Client) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    while True:
        page = await client.audit(after_id=entries[-1].id if entries else None, limit=5000)
        entries += page
        if len(page) < 5000:
            return [e for e in entries if e.action in LEASE_EVENTS]


def assert_exclusive(history: list[AuditEntry]) -> int:
    """Replay the audit log: no path is ever granted while held; tokens only grow."""
    holder: dict[str, int] = {}
    last_token_of_path: dict[str, int] = {}
    last_grant_token = 0
    grants = 0
    for entry in history:
        assert entry.path is not None
        token = entry.detail["token"]
        if entry.action == "lease.granted":
            assert entry.path not in holder, f"{entry.path} granted twice at audit entry {entry.id}"
            assert token >= last_grant_token, "fencing tokens went backwards"
            assert token > last_token_of_path.get(entry.path, 0)
            holder[entry.path] = token
            last_token_of_path[entry.path] = token
            last_grant_token = token
            grants += 1
        else:
            assert holder.get(entry.path) == token, f"{entry.action} of a lease not held: {entry}"
            del holder[entry.path]
    return grants


async def test_mutual_exclusion_under_load_of_fifty_agents(make_agent: AgentFactory) -> None:
    paths = [f"src/file{i}.py" for i in range(5)]
    agents = [await make_agent(f"load-{i}") for i in range(50)]
    outcomes = {"granted": 0, "refused": 0, "stale": 0}

    async def work(client: Client, seed: int) -> None:
        """Random work until this agent was granted twice (bounded: a loaded machine is slow)."""
        rng = random.Random(seed)
        mine = 0
        for _ in range(60):
            if mine >= 2:
                return
            wanted = rng.sample(paths, rng.choice([1, 1, 2]))
            try:
                grant = await client.acquire(
                    wanted, ttl_s=rng.choice([1.0, 30.0]), wait_s=rng.choice([0, 0, 0.3])
                )
            except LeaseHeld:
                outcomes["refused"] += 1
                continue
            outcomes["granted"] += 1
            mine += 1
            await trio.sleep(rng.random() * 0.01)
            if rng.random() < 0.2:
                await client.renew()
            if rng.random() < 0.05:
                continue  # walk away: the lease must expire on its own
            try:
                await client.release(grant.leases)
            except StaleToken:
                outcomes["stale"] += 1  # only possible if our 1 s lease ran out meanwhile

    with trio.fail_after(240):
        async with trio.open_nursery() as nursery:
            for i, client in enumerate(agents):
                nursery.start_soon(work, client, i)

    history = await lease_history(agents[0])
    grants = assert_exclusive(history)
    assert grants >= outcomes["granted"] >= 50
    assert outcomes["refused"] > 0, "the load never contended: the test proves nothing"


async def test_held_path_is_refused_with_its_holder(make_agent: AgentFactory) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    await alice.acquire(["a.txt"], work="refactor parser")
    with pytest.raises(LeaseHeld) as refused:
        await bob.acquire(["a.txt"])
    assert refused.value.code == "lease_held"
    [holder] = refused.value.holders
    assert holder.holder.name == "alice"
    assert holder.work == "refactor parser"
    assert "alice" in str(refused.value)
    [status] = await bob.holders(["a.txt"])
    assert status.lease is not None and status.lease.holder.name == "alice"


async def test_fencing_tokens_grow_with_every_grant(make_agent: AgentFactory) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    tokens = []
    for client in (alice, bob, alice):
        grant = await client.acquire(["f"])
        tokens.append(grant.leases[0].token)
        await client.release(grant.leases)
    assert tokens == sorted(tokens) and len(set(tokens)) == 3


async def test_reacquiring_own_lease_keeps_its_token_and_extends_it(
    make_agent: AgentFactory,
) -> None:
    alice = await make_agent("alice")
    first = (await alice.acquire(["f"], ttl_s=5)).leases[0]
    again = (await alice.acquire(["f", "g"], ttl_s=20)).leases
    assert again[0].token == first.token
    assert again[0].expires_at > first.expires_at
    assert again[1].token > first.token


async def test_waiters_are_served_first_come_first_served(make_agent: AgentFactory) -> None:
    holder = await make_agent("holder")
    waiters = [await make_agent(f"waiter-{i}") for i in range(3)]
    grant = await holder.acquire(["shared.py"])
    served: list[str] = []

    async def wait_for_it(client: Client) -> None:
        got = await client.acquire(["shared.py"], wait_s=20)
        assert client.agent is not None
        served.append(client.agent.name)
        await trio.sleep(0.05)
        await client.release(got.leases)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for i, client in enumerate(waiters):
                nursery.start_soon(wait_for_it, client)
                while len((await holder.holders(["shared.py"]))[0].waiters) < i + 1:
                    await trio.sleep(0.01)
            # A newcomer may not jump the line, not even for a moment.
            with pytest.raises(LeaseHeld):
                await (await make_agent("newcomer")).acquire(["shared.py"])
            await holder.release(grant.leases)
    assert served == ["waiter-0", "waiter-1", "waiter-2"]


async def test_waiter_is_woken_by_the_release_with_the_new_version(
    make_agent: AgentFactory,
) -> None:
    from leasefs.wire import VersionCreate

    alice, bob = await make_agent("alice"), await make_agent("bob")
    grant = await alice.acquire(["doc.md"])
    woke_at: list[float] = []

    async def bob_waits() -> None:
        got = await bob.acquire(["doc.md"], wait_s=20)
        woke_at.append(trio.current_time())
        version = got.versions["doc.md"]
        assert version is not None and version.author.name == "alice"
        assert await bob.read_blob(version.hash or "") == b"alice's words\n"

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bob_waits)
            while not (await alice.holders(["doc.md"]))[0].waiters:
                await trio.sleep(0.01)
            blob = await alice.upload_blob(b"alice's words\n")
            await alice.create_version(
                VersionCreate(path="doc.md", hash=blob.hash, token=grant.leases[0].token)
            )
            released_at = trio.current_time()
            await alice.release(grant.leases)
    assert woke_at[0] - released_at < 1.0


async def test_multi_path_acquire_is_all_or_nothing(make_agent: AgentFactory) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    await alice.acquire(["b"])
    with pytest.raises(LeaseHeld):
        await bob.acquire(["a", "b"])
    [a_status] = await bob.holders(["a"])
    assert a_status.lease is None, "bob must not be left holding half of his set"


async def test_crossed_multi_path_waits_never_deadlock(make_agent: AgentFactory) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    rounds = {"alice": 0, "bob": 0}

    async def loop(client: Client, order: list[str]) -> None:
        assert client.agent is not None
        for _ in range(15):
            grant = await client.acquire(order, wait_s=10)
            assert {lease.path for lease in grant.leases} == {"a", "b"}
            await trio.sleep(0.002)
            await client.release(grant.leases)
            rounds[client.agent.name] += 1

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(loop, alice, ["a", "b"])
            nursery.start_soon(loop, bob, ["b", "a"])
    assert rounds == {"alice": 15, "bob": 15}


async def test_lease_expires_without_renewal_and_next_waiter_gets_it(
    make_agent: AgentFactory,
) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    lost = (await alice.acquire(["x"], ttl_s=1.0)).leases[0]
    with trio.fail_after(15):
        start = trio.current_time()
        got = await bob.acquire(["x"], wait_s=10)
        waited = trio.current_time() - start
    assert 0.5 < waited < 5
    assert got.leases[0].token > lost.token
    with pytest.raises(StaleToken):
        await alice.release([lost])
    actions = [e.action for e in await bob.audit(path="x")]
    # bob's wait recalled the lease; alice's mount-less client ignored it, so the TTL decided.
    assert actions == ["lease.granted", "lease.recalled", "lease.expired", "lease.granted"]


async def test_renewal_keeps_a_lease_past_its_ttl(make_agent: AgentFactory) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    await alice.acquire(["x"], ttl_s=1.0)
    for _ in range(4):
        await trio.sleep(0.4)
        renewed = await alice.renew()
        assert [lease.path for lease in renewed.leases] == ["x"]
    with pytest.raises(LeaseHeld):
        await bob.acquire(["x"])


async def test_wait_gives_up_after_its_bound(make_agent: AgentFactory) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    await alice.acquire(["x"])
    with trio.fail_after(10):
        start = trio.current_time()
        with pytest.raises(LeaseHeld) as refused:
            await bob.acquire(["x"], wait_s=0.5)
    assert 0.4 < trio.current_time() - start < 5
    assert "after waiting" in str(refused.value)
    assert (await alice.holders(["x"]))[0].waiters == []


async def test_leaving_releases_every_lease_and_retires_the_token(
    make_agent: AgentFactory,
) -> None:
    from leasefs import Unauthorized

    alice, bob = await make_agent("alice"), await make_agent("bob")
    await alice.acquire(["x", "y"])
    await alice.leave()
    got = await bob.acquire(["x", "y"])
    assert len(got.leases) == 2
    with pytest.raises(Unauthorized) as retired:
        await alice.renew()
    assert retired.value.code == "agent_left"


async def test_branch_scoped_leases_exclude_their_branch_and_workspace_leases_everyone(
    make_agent: AgentFactory,
) -> None:
    """``lease_scope="branch"``: agents on two branches each hold one file, an agent on the
    same branch waits in its branch's line only, and a workspace-scoped lease (the default)
    still excludes and is excluded by both."""
    main_a, feature_b, main_c, anywhere = [await make_agent(n) for n in ("a", "b", "c", "d")]
    held_a = (await main_a.acquire(["api.txt"], branch="main", lease_scope="branch")).leases[0]
    held_b = (await feature_b.acquire(["api.txt"], branch="feature", lease_scope="branch")).leases[
        0
    ]
    assert (held_a.branch, held_b.branch) == ("main", "feature")
    with pytest.raises(LeaseHeld) as same_branch:
        await main_c.acquire(["api.txt"], branch="main", lease_scope="branch")
    assert [h.holder.name for h in same_branch.value.holders] == ["a"]
    with pytest.raises(LeaseHeld) as whole:
        await anywhere.acquire(["api.txt"], branch="main")
    assert sorted(h.holder.name for h in whole.value.holders) == ["a", "b"]
    statuses = await anywhere.holders(["api.txt"])
    assert statuses[0].lease is not None and statuses[0].lease.branch in ("main", "feature")

    async with trio.open_nursery() as nursery:
        granted: list[str] = []

        async def wait_on_main() -> None:
            grant = await main_c.acquire(
                ["api.txt"], branch="main", lease_scope="branch", wait_s=20
            )
            granted.append(grant.leases[0].holder.name)

        nursery.start_soon(wait_on_main)
        await trio.sleep(0.3)
        # c waits in main's line: feature's agent takes its file again, untouched by it.
        await feature_b.release([held_b])
        again = await feature_b.acquire(["api.txt"], branch="feature", lease_scope="branch")
        assert not granted
        await main_a.release([held_a])
    assert granted == ["c"]
    with pytest.raises(LeaseHeld):  # main (c) and feature (b) both hold it: d waits for both
        await anywhere.acquire(["api.txt"], branch="main")
    await feature_b.release(again.leases)
    c_lease = [s.lease for s in await main_c.holders(["api.txt"]) if s.lease is not None]
    await main_c.release(c_lease)

    # A workspace-scoped holder keeps every branch out; asking again in branch scope turns
    # the agent's own lease into a branch-scoped one, not a second lease.
    whole_lease = (await anywhere.acquire(["api.txt"], branch="main")).leases[0]
    assert whole_lease.branch is None
    with pytest.raises(LeaseHeld):
        await feature_b.acquire(["api.txt"], branch="feature", lease_scope="branch")
    rescoped = await anywhere.acquire(["api.txt"], branch="main", lease_scope="branch")
    assert (rescoped.leases[0].branch, rescoped.leases[0].token) == ("main", whole_lease.token)
    await feature_b.acquire(["api.txt"], branch="feature", lease_scope="branch")
    assert sorted(s.lease.holder.name for s in await anywhere.holders() if s.lease is not None) in (
        ["b"],
        ["d"],
    )  # one row per path shown; both live
    assert (await anywhere.release(rescoped.leases)).released == ["api.txt"]
