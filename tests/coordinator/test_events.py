"""The workspace event stream: ordered, resumable, nothing lost across a cut."""

from __future__ import annotations

import pytest
import trio

from leasefs import Client
from leasefs.wire import Event, EventType
from tests.conftest import AgentFactory
from tests.helpers import take_events


async def test_events_describe_every_change_in_order(make_agent: AgentFactory) -> None:
    alice = await make_agent("alice")
    grant = await alice.acquire(["a"])
    await alice.release(grant.leases)
    events = await take_events(alice, 3)
    assert [e.type for e in events] == [
        EventType.AGENT_JOINED,
        EventType.LEASE_GRANTED,
        EventType.LEASE_RELEASED,
    ]
    assert events[1].path == "a" and events[1].data["token"] == grant.leases[0].token
    assert [e.id for e in events] == sorted(e.id for e in events)


async def test_live_events_arrive_without_polling(make_agent: AgentFactory) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    seen: list[Event] = []
    got_grant = trio.Event()

    async def listen() -> None:
        async with bob.open_events() as stream:
            async for event in stream:
                seen.append(event)
                if event.type == EventType.LEASE_GRANTED:
                    got_grant.set()
                    return

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(listen)
            await trio.sleep(0.2)
            await alice.acquire(["live"])
            await got_grant.wait()
    assert seen[-1].path == "live"


async def test_cut_stream_resumed_from_last_id_misses_nothing(make_agent: AgentFactory) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    for i in range(3):
        grant = await alice.acquire([f"p{i}"])
        await alice.release(grant.leases)
    before = await take_events(bob, 4)  # 2 joins + first grant and release
    last = before[-1].id
    # The stream is cut here; meanwhile the workspace moves on.
    for i in range(3, 6):
        grant = await alice.acquire([f"p{i}"])
        await alice.release(grant.leases)
    resumed = await take_events(bob, 10, after=last)
    everything = await take_events(bob, 14)
    assert [e.id for e in before + resumed] == [e.id for e in everything]
    assert [e.path for e in resumed if e.type == EventType.LEASE_GRANTED] == [
        f"p{i}" for i in range(1, 6)
    ]


async def test_stream_needs_a_token(make_agent: AgentFactory) -> None:
    from leasefs import Unauthorized

    alice = await make_agent("alice")
    stranger = Client(alice.base_url)
    try:
        with pytest.raises(Unauthorized):
            await take_events(stranger, 1)
    finally:
        await stranger.aclose()


async def test_audit_is_queryable_by_agent_path_and_time(make_agent: AgentFactory) -> None:
    import time

    alice, bob = await make_agent("alice"), await make_agent("bob")
    grant = await alice.acquire(["one"])
    await alice.release(grant.leases)
    middle = time.time()
    grant = await bob.acquire(["two"])
    await bob.release(grant.leases)
    assert bob.agent is not None
    by_bob = await alice.audit(agent_id=bob.agent.id)
    assert {e.action for e in by_bob} == {"agent.joined", "lease.granted", "lease.released"}
    assert all(e.agent_name == "bob" for e in by_bob)
    assert [e.action for e in await alice.audit(path="one")] == ["lease.granted", "lease.released"]
    since = await alice.audit(since=middle)
    assert {e.path for e in since} == {"two"}
    until = await alice.audit(until=middle)
    assert "two" not in {e.path for e in until}
    assert len(await alice.audit(limit=2)) == 2
