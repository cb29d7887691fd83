"""Bad input gets a 4xx with {"error", "message"} and changes nothing."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from leasefs import Client, PayloadTooLarge
from leasefs.wire import VersionCreate
from tests.conftest import AgentFactory
from tests.helpers import CoordinatorProcess


async def state_of(client: Client) -> tuple[Any, ...]:
    """Everything a bad request could have changed, as seen by one agent."""
    return (
        await client.audit(),
        await client.holders(),
        await client.history("held.py"),
    )


@pytest.fixture
async def alice(make_agent: AgentFactory) -> Client:
    client = await make_agent("alice")
    grant = await client.acquire(["held.py"])
    blob = await client.upload_blob(b"v1")
    await client.create_version(
        VersionCreate(path="held.py", hash=blob.hash, token=grant.leases[0].token)
    )
    return client


@pytest.fixture
async def raw(coordinator: CoordinatorProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=coordinator.url + "/v1", timeout=10) as http:
        yield http


def auth(client: Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.token}"}


async def expect_refused(
    alice: Client, response_coro: Any, status: int, code: str
) -> dict[str, Any]:
    before = await state_of(alice)
    response: httpx.Response = await response_coro
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and len(body["message"]) > 10
    assert await state_of(alice) == before, "a refused request changed state"
    return body


BAD_PATHS = [
    ("../etc/passwd", "'..'"),
    ("src/../../x", "'..'"),
    ("/etc/passwd", "leading"),
    ("a\x00b", "NUL"),
    ("a\\..\\b", "backslash"),
    ("a//b", "empty"),
    ("./a", "'.'"),
    ("a/", "trailing"),
    ("", "empty"),
    ("x" * 300, "255"),
]


@pytest.mark.parametrize(("path", "reason"), BAD_PATHS)
async def test_bad_path_in_acquire_is_refused(
    alice: Client, raw: httpx.AsyncClient, path: str, reason: str
) -> None:
    body = await expect_refused(
        alice,
        raw.post("/leases/acquire", json={"paths": ["ok.py", path]}, headers=auth(alice)),
        422,
        "invalid_path",
    )
    assert reason in body["message"]


@pytest.mark.parametrize(("path", "reason"), BAD_PATHS[:5])
async def test_bad_path_in_queries_is_refused(
    alice: Client, raw: httpx.AsyncClient, path: str, reason: str
) -> None:
    for url in ("/leases", "/versions/latest", "/versions"):
        await expect_refused(
            alice, raw.get(url, params={"path": path}, headers=auth(alice)), 422, "invalid_path"
        )


async def test_malformed_json_is_refused(alice: Client, raw: httpx.AsyncClient) -> None:
    headers = {**auth(alice), "Content-Type": "application/json"}
    for url in ("/leases/acquire", "/leases/release", "/versions", "/agents", "/workspaces"):
        await expect_refused(
            alice, raw.post(url, content=b'{"paths": ["a"', headers=headers), 400, "malformed_json"
        )


async def test_wrong_shape_is_refused(alice: Client, raw: httpx.AsyncClient) -> None:
    for payload in ({"paths": "a.py"}, {"paths": []}, {"paths": ["a"], "ttl_s": -1}, {"x": 1}):
        await expect_refused(
            alice,
            raw.post("/leases/acquire", json=payload, headers=auth(alice)),
            422,
            "invalid_request",
        )


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YWxpY2U6eA=="}],
    ids=["missing", "wrong", "not-bearer"],
)
async def test_calls_without_a_valid_token_are_refused(
    alice: Client, raw: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    calls = [
        raw.post("/leases/acquire", json={"paths": ["free.py"]}, headers=headers),
        raw.post("/leases/renew", json={}, headers=headers),
        raw.post(
            "/leases/release", json={"leases": [{"path": "held.py", "token": 1}]}, headers=headers
        ),
        raw.get("/leases", headers=headers),
        raw.get("/audit", headers=headers),
        raw.put("/blobs/" + hashlib.sha256(b"x").hexdigest(), content=b"x", headers=headers),
        raw.get("/events", headers=headers),
    ]
    for call in calls:
        await expect_refused(alice, call, 401, "unauthorized")


async def test_unknown_workspace_is_refused(alice: Client, raw: httpx.AsyncClient) -> None:
    await expect_refused(
        alice,
        raw.post("/agents", json={"workspace": "no-such-team", "name": "mallory"}),
        404,
        "unknown_workspace",
    )
    response = await raw.get("/workspaces/no-such-team")
    assert response.status_code == 404 and response.json()["error"] == "unknown_workspace"


async def test_bad_workspace_name_is_refused(alice: Client, raw: httpx.AsyncClient) -> None:
    for name in ("../x", "", "a b", "x" * 65):
        await expect_refused(
            alice, raw.post("/workspaces", json={"name": name}), 422, "invalid_request"
        )


async def test_duplicate_workspace_is_refused(alice: Client, raw: httpx.AsyncClient) -> None:
    assert alice.workspace is not None
    await expect_refused(
        alice, raw.post("/workspaces", json={"name": alice.workspace}), 409, "workspace_exists"
    )


async def test_stale_fencing_token_is_refused(
    alice: Client, make_agent: AgentFactory, raw: httpx.AsyncClient
) -> None:
    [status] = await alice.holders(["held.py"])
    assert status.lease is not None
    stale = status.lease.token - 1
    blob = await alice.upload_blob(b"v2")
    await expect_refused(
        alice,
        raw.post(
            "/leases/release",
            json={"leases": [{"path": "held.py", "token": stale}]},
            headers=auth(alice),
        ),
        409,
        "stale_token",
    )
    await expect_refused(
        alice,
        raw.post(
            "/versions",
            json={"path": "held.py", "hash": blob.hash, "token": stale},
            headers=auth(alice),
        ),
        409,
        "stale_token",
    )
    # Releasing a path one never held is refused whole, even alongside a good one.
    good = {"path": "held.py", "token": status.lease.token}
    bob = await make_agent("bob")
    await expect_refused(
        alice,
        raw.post("/leases/release", json={"leases": [good]}, headers=auth(bob)),
        409,
        "stale_token",
    )
    await expect_refused(
        alice,
        raw.post(
            "/leases/release",
            json={"leases": [good, {"path": "never.py", "token": status.lease.token}]},
            headers=auth(alice),
        ),
        409,
        "stale_token",
    )


async def test_version_with_hash_and_deletion_is_refused(
    alice: Client, raw: httpx.AsyncClient
) -> None:
    [status] = await alice.holders(["held.py"])
    assert status.lease is not None
    payload = {"path": "held.py", "hash": "a" * 64, "deleted": True, "token": status.lease.token}
    await expect_refused(
        alice, raw.post("/versions", json=payload, headers=auth(alice)), 422, "invalid_request"
    )


async def test_blob_whose_bytes_do_not_match_its_hash_is_refused(
    alice: Client, raw: httpx.AsyncClient
) -> None:
    claimed = hashlib.sha256(b"what I say").hexdigest()
    body = await expect_refused(
        alice,
        raw.put(f"/blobs/{claimed}", content=b"what I send", headers=auth(alice)),
        422,
        "hash_mismatch",
    )
    assert body["details"]["actual"] == hashlib.sha256(b"what I send").hexdigest()
    assert not await alice.has_blob(claimed)
    assert not await alice.has_blob(body["details"]["actual"])


async def test_malformed_blob_hash_is_refused(alice: Client, raw: httpx.AsyncClient) -> None:
    for digest in ("abc", "G" * 64, "../" + "a" * 61):
        response = await raw.put(f"/blobs/{digest}", content=b"x", headers=auth(alice))
        assert response.status_code in (404, 422), response.text
        assert response.json()["error"] in ("invalid_hash", "not_found")


SmallBlobs = tuple[Client, httpx.AsyncClient, Path]


@pytest.fixture
async def small_blobs(tmp_path: Path) -> AsyncIterator[SmallBlobs]:
    """Alice on a coordinator of her own that takes blobs of at most 1,000 bytes, with a raw
    HTTP client beside her, and that coordinator's data directory."""
    server = CoordinatorProcess(tmp_path / "small", "--max-blob-bytes", "1000").start()
    try:
        async with (
            Client(server.url) as alice,
            httpx.AsyncClient(base_url=server.url + "/v1") as raw,
        ):
            await alice.create_workspace("team")
            await alice.register("team", "alice")
            yield alice, raw, server.data_dir
    finally:
        server.stop()


async def test_oversized_blob_is_refused(small_blobs: SmallBlobs) -> None:
    alice, raw, data_dir = small_blobs
    data = b"y" * 1001
    digest = hashlib.sha256(data).hexdigest()
    await expect_refused(
        alice,
        raw.put(f"/blobs/{digest}", content=data, headers=auth(alice)),
        413,
        "blob_too_large",
    )

    async def no_length() -> AsyncIterator[bytes]:
        for _ in range(11):
            yield b"z" * 100  # streamed, so the size is only known while reading

    digest = hashlib.sha256(b"z" * 1100).hexdigest()
    await expect_refused(
        alice,
        raw.put(f"/blobs/{digest}", content=no_length(), headers=auth(alice)),
        413,
        "blob_too_large",
    )
    assert not await alice.has_blob(digest)
    assert list((data_dir / "blobs" / "tmp").iterdir()) == []


async def test_unknown_endpoint_and_method_answer_in_the_error_format(
    raw: httpx.AsyncClient,
) -> None:
    response = await raw.get("/nothing-here")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    response = await raw.delete("/health")
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"


async def test_openapi_document_describes_the_api(raw: httpx.AsyncClient) -> None:
    document = (await raw.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    for path in (
        "/v1/leases/acquire",
        "/v1/leases/release",
        "/v1/versions",
        "/v1/blobs/{digest}",
        "/v1/events",
    ):
        assert path in document["paths"]
    assert "LeaseRequest" in document["components"]["schemas"]


async def test_a_version_batch_with_bad_contents_records_nothing(
    alice: Client, raw: httpx.AsyncClient
) -> None:
    token = (await alice.acquire(["held.py"])).leases[0].token
    content = b"print('two')\n"
    digest = hashlib.sha256(content).hexdigest()
    version = {"path": "held.py", "hash": digest, "token": token}
    other = hashlib.sha256(b"something else").hexdigest()

    def batch(contents: dict[str, str], versions: list[dict[str, Any]] | None = None) -> Any:
        body = {"versions": [version] if versions is None else versions, "contents": contents}
        return raw.post("/versions/batch", json=body, headers=auth(alice))

    body = await expect_refused(alice, batch({digest: "bm90IGl0Cg=="}), 422, "hash_mismatch")
    assert body["details"]["expected"] == digest
    await expect_refused(alice, batch({digest: "%%% not base64"}), 422, "invalid_request")
    await expect_refused(alice, batch({other: "eA=="}), 422, "hash_mismatch")
    await expect_refused(alice, batch({}, [version] * 501), 422, "invalid_request")
    await expect_refused(alice, batch({}, []), 422, "invalid_request")
    assert not await alice.has_blob(digest)


async def test_a_version_batch_content_over_the_blob_limit_is_refused(
    small_blobs: SmallBlobs,
) -> None:
    alice, raw, data_dir = small_blobs
    token = (await alice.acquire(["f"])).leases[0].token
    data = b"y" * 1001
    digest = hashlib.sha256(data).hexdigest()
    version = VersionCreate(path="f", hash=digest, token=token)
    with pytest.raises(PayloadTooLarge, match="over this coordinator's limit of 1000"):
        await alice.create_versions([version], {digest: data})
    body = {
        "versions": [version.model_dump(mode="json")],
        "contents": {digest: base64.b64encode(data).decode()},
    }
    await expect_refused(
        alice,
        raw.post("/versions/batch", json=body, headers=auth(alice)),
        413,
        "blob_too_large",
    )
    assert not await alice.has_blob(digest)
    assert list((data_dir / "blobs" / "tmp").iterdir()) == []
