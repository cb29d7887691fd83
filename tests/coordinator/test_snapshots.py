"""Blobs and versions against a real coordinator, including a 200 MB file in bounded memory."""

from __future__ import annotations

import hashlib
import os
import resource
from pathlib import Path

import pytest

from leasefs import InvalidRequest, StaleToken
from leasefs._client import SMALL_BLOB_BYTES
from leasefs.wire import VersionCreate
from tests.conftest import AgentFactory
from tests.servers import CoordinatorProcess

MiB = 1 << 20


async def test_snapshot_round_trip_with_history(make_agent: AgentFactory) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    token = (await alice.acquire(["src/app.py"])).leases[0].token
    first = await alice.upload_blob(b"print('one')\n")
    v1 = await alice.create_version(
        VersionCreate(path="src/app.py", hash=first.hash, token=token, mode=0o644)
    )
    second = await alice.upload_blob(b"print('two')\n")
    v2 = await alice.create_version(
        VersionCreate(path="src/app.py", hash=second.hash, base_hash=first.hash, token=token)
    )
    gone = await alice.create_version(
        VersionCreate(path="src/app.py", deleted=True, base_hash=second.hash, token=token)
    )

    latest = await bob.latest_version("src/app.py")
    assert latest == gone and latest.deleted and latest.hash is None
    assert [v.id for v in await bob.history("src/app.py")] == [gone.id, v2.id, v1.id]
    assert v2.size == len(b"print('two')\n") and v2.base_hash == first.hash
    assert v1.mode == 0o644 and v1.author.name == "alice" and v1.token == token
    assert await bob.read_blob(first.hash) == b"print('one')\n"
    assert await bob.latest_version("never/written.py") is None
    assert await bob.latest_version("src/app.py", branch="other") is None


async def test_version_with_a_stale_fencing_token_is_refused(make_agent: AgentFactory) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    old = (await alice.acquire(["f"], ttl_s=30)).leases[0]
    await alice.release([old])
    await bob.acquire(["f"])
    blob = await alice.upload_blob(b"late write")
    with pytest.raises(StaleToken):
        await alice.create_version(VersionCreate(path="f", hash=blob.hash, token=old.token))
    assert await bob.latest_version("f") is None


async def test_version_needs_an_uploaded_blob(make_agent: AgentFactory) -> None:
    alice = await make_agent("alice")
    token = (await alice.acquire(["f"])).leases[0].token
    with pytest.raises(InvalidRequest) as refused:
        await alice.create_version(VersionCreate(path="f", hash="ab" * 32, token=token))
    assert refused.value.code == "unknown_blob"


@pytest.mark.parametrize("size", [0, 1, SMALL_BLOB_BYTES, SMALL_BLOB_BYTES + 1, 3 * MiB + 7])
async def test_upload_from_a_descriptor_at_every_size(
    make_agent: AgentFactory, tmp_path: Path, size: int
) -> None:
    """Small files go up in one PUT, bigger ones are asked about and streamed: both arrive
    whole, a second upload changes nothing, and the descriptor's offset is left alone."""
    alice, bob = await make_agent("alice"), await make_agent("bob")
    content = os.urandom(size)
    (tmp_path / "f").write_bytes(content)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        os.lseek(fd, size // 2, os.SEEK_SET)
        first = await alice.upload_blob_fd(fd)
        again = await bob.upload_blob_fd(fd)
        assert os.lseek(fd, 0, os.SEEK_CUR) == size // 2
    finally:
        os.close(fd)
    assert first == again and first.size == size
    assert first.hash == hashlib.sha256(content).hexdigest()
    assert await bob.read_blob(first.hash) == content


async def test_blob_upload_is_idempotent(make_agent: AgentFactory) -> None:
    alice = await make_agent("alice")
    one = await alice.upload_blob(b"same bytes")
    two = await alice.upload_blob(b"same bytes")
    assert one == two
    assert await alice.has_blob(one.hash)


async def test_200_mb_file_round_trip_in_bounded_memory(
    coordinator: CoordinatorProcess, make_agent: AgentFactory, tmp_path: Path
) -> None:
    size = 200 * MiB
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with open(source, "wb") as f:
        block = os.urandom(MiB)
        for i in range(size // MiB):
            chunk = block[:-4] + i.to_bytes(4, "big")
            digest.update(chunk)
            f.write(chunk)
    alice = await make_agent("alice")
    server_peak_before = coordinator.peak_rss_bytes()
    client_peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    info = await alice.upload_blob_file(source)
    assert info.hash == digest.hexdigest() and info.size == size
    target = tmp_path / "back.bin"
    assert await alice.download_blob(info.hash, target) == size

    client_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - client_peak_before
    server_growth = coordinator.peak_rss_bytes() - server_peak_before
    print(
        f"peak RSS growth: client {client_growth / MiB:.1f} MiB, server {server_growth / MiB:.1f} MiB"
    )
    assert client_growth < 64 * MiB
    assert server_growth < 64 * MiB
    assert target.stat().st_size == size
    assert os.path.getsize(source) == size
    with open(target, "rb") as back, open(source, "rb") as original:
        while chunk := original.read(8 * MiB):
            assert back.read(8 * MiB) == chunk
