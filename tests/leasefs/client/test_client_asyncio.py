"""The client runs under asyncio too (the MCP SDK's loop), not only under trio."""

from __future__ import annotations

import asyncio

import pytest

from leasefs import Client, LeaseHeld
from leasefs.wire import EventType, VersionCreate
from tests.helpers import CoordinatorProcess


def test_client_works_under_asyncio(coordinator: CoordinatorProcess) -> None:
    async def scenario() -> list[str]:
        async with Client(coordinator.url) as alice, Client(coordinator.url) as bob:
            await alice.ensure_workspace("asyncio-team")
            await alice.register("asyncio-team", "alice")
            await bob.register("asyncio-team", "bob")
            grant = await alice.acquire(["a.txt"])
            with pytest.raises(LeaseHeld):
                await bob.acquire(["a.txt"])
            waiter = asyncio.create_task(bob.acquire(["a.txt"], wait_s=10))
            await asyncio.sleep(0.2)
            blob = await alice.upload_blob(b"from asyncio\n")
            token = grant.leases[0].token
            await alice.create_version(VersionCreate(path="a.txt", hash=blob.hash, token=token))
            await alice.release(grant.leases)
            got = await asyncio.wait_for(waiter, 10)
            version = got.versions["a.txt"]
            assert (
                version is not None and await bob.read_blob(version.hash or "") == b"from asyncio\n"
            )
            seen = []
            async with bob.open_events() as events:
                async for event in events:
                    seen.append(event.type.value)
                    if event.type == EventType.VERSION_CREATED:
                        break
            return seen

    seen = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert "lease.granted" in seen and seen[-1] == "version.created"
