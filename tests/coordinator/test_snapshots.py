"""Blobs and versions against a real coordinator, including a 200 MB file in bounded memory."""

from __future__ import annotations

import hashlib
import os
import resource
from pathlib import Path

import pytest

from leasefs import Client, InvalidRequest, StaleToken
from leasefs.wire import SMALL_BLOB_BYTES, VersionCreate
from tests.conftest import AgentFactory
from tests.helpers import CoordinatorProcess

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


async def test_versions_recorded_in_one_batch_with_their_contents(
    make_agent: AgentFactory,
) -> None:
    """A mount releasing many files records them in one request: small contents inline,
    a bigger one uploaded before, a deletion; identical contents are stored once."""
    alice, bob = await make_agent("alice"), await make_agent("bob")
    grant = await alice.acquire(["a.txt", "b.txt", "big.bin", "gone.txt"])
    token = {lease.path: lease.token for lease in grant.leases}
    small, big = b"same small content\n", os.urandom(200_000)
    small_hash, big_hash = (hashlib.sha256(d).hexdigest() for d in (small, big))
    await alice.upload_blob(big)
    versions = [
        VersionCreate(path="a.txt", hash=small_hash, token=token["a.txt"], mode=0o644),
        VersionCreate(path="b.txt", hash=small_hash, token=token["b.txt"]),
        VersionCreate(path="big.bin", hash=big_hash, token=token["big.bin"]),
        VersionCreate(path="gone.txt", deleted=True, base_hash=small_hash, token=token["gone.txt"]),
    ]
    created = await alice.create_versions(versions, {small_hash: small})

    assert [(v.path, v.hash, v.deleted) for v in created] == [
        (v.path, v.hash, v.deleted) for v in versions
    ]
    assert created[0].mode == 0o644 and created[0].size == len(small)
    assert created[2].size == len(big) and created[3].size is None
    for version in created:
        assert await bob.latest_version(version.path) == version
    assert await bob.read_blob(small_hash) == small
    assert [e.action for e in await bob.audit(path="a.txt")].count("version.created") == 1


async def test_a_batch_with_one_stale_token_records_nothing(make_agent: AgentFactory) -> None:
    alice, bob = await make_agent("alice"), await make_agent("bob")
    grant = await alice.acquire(["kept.txt", "lost.txt"])
    kept, lost = sorted(grant.leases, key=lambda lease: lease.path)
    await alice.release([lost])
    await bob.acquire(["lost.txt"])
    content = b"written by alice\n"
    digest = hashlib.sha256(content).hexdigest()
    versions = [
        VersionCreate(path="kept.txt", hash=digest, token=kept.token),
        VersionCreate(path="lost.txt", hash=digest, token=lost.token),
    ]
    with pytest.raises(StaleToken) as refused:
        await alice.create_versions(versions, {digest: content})
    assert refused.value.details["path"] == "lost.txt"
    assert await bob.latest_version("kept.txt") is None
    assert await bob.latest_version("lost.txt") is None
    assert not await alice.has_blob(digest)


async def test_a_batch_over_the_json_limit_uploads_its_largest_contents_first(
    tmp_path: Path,
) -> None:
    server = CoordinatorProcess(tmp_path / "tight", "--max-json-bytes", "40000").start()
    try:
        async with Client(server.url, timeout=30) as alice:
            await alice.create_workspace("team")
            await alice.register("team", "alice")
            contents = [os.urandom(n) for n in (20_000, 9_000, 100, 0)]
            paths = [f"f{i}" for i in range(len(contents))]
            grant = await alice.acquire(paths)
            versions = [
                VersionCreate(path=lease.path, hash=hashlib.sha256(data).hexdigest(),
                              token=lease.token)
                for lease, data in zip(sorted(grant.leases, key=lambda x: x.path), contents,
                                       strict=True)
            ]  # fmt: skip
            created = await alice.create_versions(
                versions, {v.hash: d for v, d in zip(versions, contents, strict=True) if v.hash}
            )
            assert [v.size for v in created] == [len(d) for d in contents]
            for version, data in zip(created, contents, strict=True):
                assert version.hash is not None
                assert await alice.read_blob(version.hash) == data
    finally:
        server.stop()
