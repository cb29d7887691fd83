"""Snapshots: contents as blobs, addressed by their sha256, and the versions naming them.

Blobs are streamed in chunks both ways, never whole in memory, and checked against the
coordinator's size limit before they are sent; a batch of versions carries small contents
inline instead, kept under its JSON body limit.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

import anyio

from ..wire import (
    DEFAULT_BRANCH,
    MAX_JSON_BYTES,
    BlobInfo,
    ErrorCode,
    Version,
    VersionBatch,
    VersionCreate,
)
from ._exceptions import LeasefsError, PayloadTooLarge
from ._hashing import CHUNK_SIZE, _sha256_of_fd, _small_content_of_fd, sha256_of_file
from ._transport import _UNREACHABLE, Transport, _converted, _rejection, httpx_errors_as_ours

_JSON_MARGIN_BYTES = 1024  # headroom under the coordinator's JSON limit, for estimates


def _inline_json_bytes(data: bytes) -> int:
    """What one inline content adds to a JSON body: its key, and its bytes in base64."""
    return 64 + 6 + 4 * math.ceil(len(data) / 3)


class SnapshotCalls(Transport):
    """The calls about blobs and versions."""

    async def has_blob(self, digest: str) -> bool:
        try:
            await self._request("HEAD", f"/blobs/{digest}")
        except LeasefsError as exc:
            if getattr(exc, "status", None) == 404:
                return False
            raise
        return True

    async def _check_blob_size(self, size: int) -> None:
        """Refuse a blob over the coordinator's limit before streaming it: refused halfway,
        the upload would end as a broken connection rather than a clear error."""
        if self._limits is None:
            self._limits = (await self.health()).limits
        if self._limits is not None and size > self._limits.max_blob_bytes:
            limit = self._limits.max_blob_bytes
            raise PayloadTooLarge(
                f"the blob is {size} bytes, over this coordinator's limit of {limit} bytes "
                "(leasefs serve --max-blob-bytes)",
                status=413,
                code=ErrorCode.BLOB_TOO_LARGE,
                details={"max_bytes": limit, "size": size},
            )

    async def upload_blob(self, data: bytes) -> BlobInfo:
        digest = hashlib.sha256(data).hexdigest()
        return await self._call(BlobInfo, "PUT", f"/blobs/{digest}", content=data)

    async def upload_blob_file(self, path: str | os.PathLike[str]) -> BlobInfo:
        """Upload a file's content, streamed in chunks; skipped if the coordinator has it."""
        digest, size = await anyio.to_thread.run_sync(sha256_of_file, path)
        if await self.has_blob(digest):
            return BlobInfo(hash=digest, size=size)
        await self._check_blob_size(size)

        async def chunks() -> AsyncIterator[bytes]:
            async with await anyio.open_file(path, "rb") as f:
                while chunk := await f.read(CHUNK_SIZE):
                    yield chunk

        response = await self._request(
            "PUT", f"/blobs/{digest}", content=chunks(), request_timeout=max(self._timeout, 600.0)
        )
        return BlobInfo.model_validate_json(response.content)

    async def upload_blob_fd(self, fd: int) -> BlobInfo:
        """Upload what an open file holds, read with pread (the descriptor's offset untouched).

        A small file is sent at once: one PUT costs what asking first whether the coordinator
        has it would, and a blob it has is stored once. A bigger one is asked about first and
        streamed only if missing.
        """
        small = await anyio.to_thread.run_sync(_small_content_of_fd, fd)
        if small is not None:
            await self._check_blob_size(len(small))
            return await self.upload_blob(small)
        digest, size = await anyio.to_thread.run_sync(_sha256_of_fd, fd)
        if await self.has_blob(digest):
            return BlobInfo(hash=digest, size=size)
        await self._check_blob_size(size)

        async def chunks() -> AsyncIterator[bytes]:
            offset = 0
            while chunk := await anyio.to_thread.run_sync(os.pread, fd, CHUNK_SIZE, offset):
                offset += len(chunk)
                yield chunk

        response = await self._request(
            "PUT", f"/blobs/{digest}", content=chunks(), request_timeout=max(self._timeout, 600.0)
        )
        return BlobInfo.model_validate_json(response.content)

    @asynccontextmanager
    async def open_blob(self, digest: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """Stream a blob: ``async with client.open_blob(h) as chunks: async for c in chunks``."""
        request = self._http.build_request("GET", f"/blobs/{digest}", headers=self._headers())
        with httpx_errors_as_ours(_UNREACHABLE, self.base_url):
            response = await self._http.send(request, stream=True)
        try:
            if response.is_error:
                await response.aread()
                raise _rejection(response)
            yield _converted(response.aiter_bytes(CHUNK_SIZE), self.base_url)
        finally:
            await response.aclose()

    async def read_blob(self, digest: str) -> bytes:
        parts = []
        async with self.open_blob(digest) as chunks:
            async for chunk in chunks:
                parts.append(chunk)
        return b"".join(parts)

    async def download_blob(self, digest: str, dest: str | os.PathLike[str]) -> int:
        """Write a blob to ``dest`` chunk by chunk, checking its hash; returns its size."""
        hasher = hashlib.sha256()
        size = 0
        async with self.open_blob(digest) as chunks, await anyio.open_file(dest, "wb") as f:
            async for chunk in chunks:
                hasher.update(chunk)
                await f.write(chunk)
                size += len(chunk)
        if hasher.hexdigest() != digest:
            raise LeasefsError(f"blob {digest} arrived with different content; {dest} is not valid")
        return size

    async def create_version(self, version: VersionCreate) -> Version:
        return await self._call(Version, "POST", "/versions", body=version)

    async def create_versions(
        self, versions: Sequence[VersionCreate], contents: Mapping[str, bytes] | None = None
    ) -> list[Version]:
        """Record ``versions`` all at once (or none: `StaleToken` if one lease is no longer
        current), with the contents not uploaded as blobs, keyed by their sha256.

        A content over the coordinator's blob limit raises `PayloadTooLarge`; if together
        they would outgrow its JSON body limit, the largest are uploaded as blobs first.
        """
        inline = dict(contents or {})
        for data in inline.values():
            await self._check_blob_size(len(data))
        # Built without validating again: the versions are models already, and validating
        # would decode every content from base64 only for it to be encoded once more.
        bare = VersionBatch.model_construct(versions=list(versions), contents={})
        size = len(bare.model_dump_json()) + sum(_inline_json_bytes(d) for d in inline.values())
        budget = self._limits.max_json_bytes if self._limits else MAX_JSON_BYTES
        for digest in sorted(inline, key=lambda d: len(inline[d]), reverse=True):
            if size <= budget - _JSON_MARGIN_BYTES:
                break
            data = inline.pop(digest)
            await self.upload_blob(data)
            size -= _inline_json_bytes(data)
        batch = VersionBatch.model_construct(versions=list(versions), contents=inline)
        return await self._call_list(Version, "POST", "/versions/batch", body=batch)

    async def latest_version(self, path: str, *, branch: str = DEFAULT_BRANCH) -> Version | None:
        try:
            return await self._call(
                Version, "GET", "/versions/latest", params={"path": path, "branch": branch}
            )
        except LeasefsError as exc:
            if getattr(exc, "code", None) == "no_version":
                return None
            raise

    async def history(
        self, path: str, *, branch: str = DEFAULT_BRANCH, limit: int = 100
    ) -> list[Version]:
        params = {"path": path, "branch": branch, "limit": limit}
        return await self._call_list(Version, "GET", "/versions", params=params)
