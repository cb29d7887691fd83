"""A holder that ignores a recall loses the lease after the break timeout, even while it
keeps renewing (DESIGN: recall, as SMB leases and NFSv4 delegations do)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import trio

from leasefs import Client
from tests.helpers import CoordinatorProcess, serving

BREAK_S = 2.0
TTL_S = 3.0


@pytest.fixture
def breaking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoordinatorProcess]:
    with serving(tmp_path_factory.mktemp("breaking"), "--break-timeout", str(BREAK_S)) as server:
        yield server


async def test_a_recalled_lease_kept_past_the_break_timeout_lapses(
    breaking: CoordinatorProcess,
) -> None:
    async with Client(breaking.url, timeout=30) as alice, Client(breaking.url, timeout=30) as bob:
        await alice.ensure_workspace("breaks")
        await alice.register("breaks", "alice")
        await bob.register("breaks", "bob")
        held = await alice.acquire(["src/app.py"], ttl_s=TTL_S)
        renewed_paths: list[list[str]] = []

        async def keep_renewing() -> None:
            """A holder that never gives the lease back, renewing every TTL/3."""
            while True:
                result = await alice.renew()
                renewed_paths.append([lease.path for lease in result.leases])
                await trio.sleep(TTL_S / 3)

        started = time.monotonic()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep_renewing)
            grant = await bob.acquire(["src/app.py"], wait_s=30)
            nursery.cancel_scope.cancel()
        waited = time.monotonic() - started

    assert grant.leases[0].holder.name == "bob"
    assert grant.leases[0].token > held.leases[0].token
    # Not renewed once the break timeout had passed, so it lapsed by its TTL.
    assert ["src/app.py"] in renewed_paths and renewed_paths[-1] == []
    assert waited >= BREAK_S, "the lease broke before the break timeout"
    assert waited < BREAK_S + TTL_S + 5, "a holder that keeps renewing kept the lease"
