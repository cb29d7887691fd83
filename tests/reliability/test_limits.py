"""Every limit the coordinator enforces answers with a clear error and changes nothing.

One coordinator with small limits serves the module: JSON bodies of at most 2,000 bytes,
three leases per agent, five requests per second per agent (bursts of ten).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from leasefs import Client, TooManyLeases
from leasefs.wire import MemoryCreate
from tests.helpers import CoordinatorProcess, serving

MAX_JSON = 2000
MAX_LEASES = 3
RATE = 5


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoordinatorProcess]:
    with serving(
        tmp_path_factory.mktemp("limited"),
        *("--max-json-bytes", str(MAX_JSON)),
        *("--max-leases-per-agent", str(MAX_LEASES)),
        *("--rate-limit", str(RATE)),
    ) as server:
        yield server


_counter = iter(range(1_000_000))


@pytest.fixture
async def agent(limited: CoordinatorProcess) -> AsyncIterator[Client]:
    async with Client(limited.url, timeout=30) as client:
        workspace = f"limits-{next(_counter)}"
        await client.ensure_workspace(workspace)
        await client.register(workspace, "agent")
        yield client


def _auth(client: Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.token}"}


async def test_an_oversized_json_body_is_refused_unread(
    agent: Client, limited: CoordinatorProcess
) -> None:
    big = MemoryCreate(text="x" * (MAX_JSON + 100)).model_dump_json().encode()
    async with httpx.AsyncClient(base_url=limited.url + "/v1", timeout=10) as raw:
        declared = await raw.post(
            "/memories", content=big, headers={**_auth(agent), "Content-Type": "application/json"}
        )

        async def chunked() -> AsyncIterator[bytes]:
            for start in range(0, len(big), 500):
                yield big[start : start + 500]

        streamed = await raw.post(
            "/memories",
            content=chunked(),
            headers={**_auth(agent), "Content-Type": "application/json"},
        )
        small = MemoryCreate(text="fits").model_dump_json().encode()

        async def small_chunked() -> AsyncIterator[bytes]:
            yield small[:5]
            yield small[5:]

        fits = await raw.post(
            "/memories",
            content=small_chunked(),
            headers={**_auth(agent), "Content-Type": "application/json"},
        )
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        body = response.json()
        assert body["error"] == "body_too_large"
        assert "--max-json-bytes" in body["message"]
        assert body["details"]["max_bytes"] == MAX_JSON
    assert fits.status_code == 201, fits.text  # a chunked body under the limit still parses
    assert [m.text for m in await agent.recall()] == ["fits"]


async def test_an_agent_holds_at_most_its_share_of_leases(agent: Client) -> None:
    await agent.acquire(["a", "b"])
    with pytest.raises(TooManyLeases) as refused:
        await agent.acquire(["c", "d"])  # all or nothing: "c" alone would fit
    assert refused.value.status == 429
    assert "--max-leases-per-agent" in str(refused.value)
    assert refused.value.details == {"max_leases": MAX_LEASES, "held": 2, "requested": 2}
    [status] = await agent.holders(["c"])
    assert status.lease is None, "a refused request grants nothing"
    grant = await agent.acquire(["a", "b", "c"])  # renewing what it holds costs nothing
    with pytest.raises(TooManyLeases):
        await agent.acquire(["d"])
    await agent.release([lease for lease in grant.leases if lease.path == "a"])
    await agent.acquire(["d"])


async def test_requests_over_the_rate_are_told_when_to_come_back(
    agent: Client, limited: CoordinatorProcess
) -> None:
    answers: list[httpx.Response] = []
    async with httpx.AsyncClient(base_url=limited.url + "/v1", timeout=10) as raw:
        # Sent as fast as they go: however slow the machine, a few hundred meet the limit.
        while len(answers) < 300 and not any(r.status_code == 429 for r in answers):
            answers.append(await raw.get("/agents/me", headers=_auth(agent)))
    refused = [r for r in answers if r.status_code == 429]
    assert refused, "a burst of twice the rate (and more) must meet the limit"
    assert all(r.status_code in (200, 429) for r in answers)
    first = refused[0]
    assert first.json()["error"] == "rate_limited"
    assert "--rate-limit" in first.json()["message"]
    assert 0 < first.json()["details"]["retry_after_s"] <= 1 / RATE + 0.01
    assert int(first.headers["Retry-After"]) >= 1


async def test_the_client_waits_out_the_rate_limit_by_itself(agent: Client) -> None:
    started = time.monotonic()
    for _ in range(3 * RATE):
        assert (await agent.whoami()).name == "agent"
    # A burst of 2 x RATE passes at once; the rest had to wait for tokens to come back.
    assert time.monotonic() - started >= (RATE - 1) / RATE


async def test_one_agents_rate_does_not_limit_another(
    limited: CoordinatorProcess, tmp_path: Path
) -> None:
    async with Client(limited.url) as a, Client(limited.url) as b:
        await a.ensure_workspace("limits-pair")
        await a.register("limits-pair", "a")
        await b.register("limits-pair", "b")
        async with httpx.AsyncClient(base_url=limited.url + "/v1", timeout=10) as raw:
            while (await raw.get("/agents/me", headers=_auth(a))).status_code != 429:
                pass
            assert (await raw.get("/agents/me", headers=_auth(b))).status_code == 200


async def test_registration_is_limited_per_address(limited: CoordinatorProcess) -> None:
    async with httpx.AsyncClient(base_url=limited.url + "/v1", timeout=10) as raw:
        statuses: list[int] = []
        while len(statuses) < 300 and 429 not in statuses:
            answer = await raw.post("/workspaces", json={"name": f"burst-{len(statuses)}"})
            statuses.append(answer.status_code)
    assert 429 in statuses
    assert set(statuses) <= {201, 429}


async def test_redeeming_is_limited_per_address_and_one_address_spares_another(
    limited: CoordinatorProcess,
) -> None:
    """Guessing invitation secrets from one address meets the limit; a machine on another
    address (here two loopback addresses as two machines) still gets its answer."""
    forged = {"secret": "lfi_" + "0" * 40, "name": "guesser"}

    def machine(address: str) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(local_address=address)
        return httpx.AsyncClient(base_url=limited.url + "/v1", timeout=10, transport=transport)

    async with machine("127.0.0.3") as guesser, machine("127.0.0.4") as neighbour:
        statuses: list[int] = []
        while len(statuses) < 300 and 429 not in statuses:
            statuses.append((await guesser.post("/invitations/redeem", json=forged)).status_code)
        assert 429 in statuses and set(statuses) <= {403, 429}
        answer = await neighbour.post("/invitations/redeem", json=forged)
        assert answer.status_code == 403 and answer.json()["error"] == "invalid_invitation"
