"""Content-addressed blob files on the coordinator's disk.

A blob is stored once under ``blobs/ab/abcdef…`` whatever the number of workspaces that
uploaded it (the store records which workspaces may read it). An upload streams into a
temporary file while its sha256 is computed; only bytes that match the announced hash are
fsynced and renamed into place, so a crash or a lie never leaves a half-written blob.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import trio

from leasefs.wire import ErrorCode

from ._errors import StoreFailure, TooLarge, Unprocessable

CHUNK_SIZE = 1 << 20


class BlobFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        for leftover in self._tmp.iterdir():
            leftover.unlink(missing_ok=True)

    def path_of(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def exists(self, digest: str) -> bool:
        return self.path_of(digest).is_file()

    async def write(self, digest: str, chunks: AsyncIterator[bytes], max_bytes: int) -> int:
        """Store the streamed bytes as blob ``digest``; returns the size.

        Raises `TooLarge` past ``max_bytes`` and `Unprocessable` if the bytes do not hash to
        ``digest``; in both cases nothing is kept.
        """
        tmp = self._tmp / f"{digest}.{secrets.token_hex(8)}"
        hasher = hashlib.sha256()
        size = 0
        pending: list[bytes] = []
        pending_size = 0
        try:
            f = await trio.to_thread.run_sync(open, tmp, "wb")
            with f:

                def flush(parts: list[bytes]) -> None:
                    for part in parts:
                        hasher.update(part)
                        f.write(part)

                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLarge(
                            f"the blob is larger than this coordinator's limit of {max_bytes} bytes",
                            details={"max_bytes": max_bytes},
                        )
                    pending.append(chunk)
                    pending_size += len(chunk)
                    if pending_size >= CHUNK_SIZE:
                        await trio.to_thread.run_sync(flush, pending)
                        pending, pending_size = [], 0
                await trio.to_thread.run_sync(flush, pending)
                await trio.to_thread.run_sync(os.fsync, f.fileno())
            actual = hasher.hexdigest()
            if actual != digest:
                raise Unprocessable(
                    f"the uploaded bytes hash to {actual}, not to {digest}; nothing was stored",
                    code=ErrorCode.HASH_MISMATCH,
                    details={"expected": digest, "actual": actual, "size": size},
                )
            final = self.path_of(digest)
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp, final)
            return size
        except OSError as exc:
            raise StoreFailure(f"the coordinator could not store the blob: {exc.strerror}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    async def write_small(self, contents: Mapping[str, bytes], max_bytes: int) -> dict[str, int]:
        """Store contents held in memory, keyed by their sha256; returns their sizes.

        One worker thread for all of them. Before storing anything, raises `TooLarge` if one
        is over ``max_bytes`` and `Unprocessable` if one does not hash to its key.
        """
        for digest, data in contents.items():
            if len(data) > max_bytes:
                raise TooLarge(
                    f"the content of {digest} is larger than this coordinator's limit of "
                    f"{max_bytes} bytes",
                    details={"max_bytes": max_bytes, "hash": digest},
                )
            actual = hashlib.sha256(data).hexdigest()
            if actual != digest:
                raise Unprocessable(
                    f"a content sent as {digest} hashes to {actual}; nothing was stored",
                    code=ErrorCode.HASH_MISMATCH,
                    details={"expected": digest, "actual": actual, "size": len(data)},
                )
        try:
            await trio.to_thread.run_sync(self._write_all, contents)
        except OSError as exc:
            raise StoreFailure(f"the coordinator could not store a blob: {exc.strerror}") from exc
        return {digest: len(data) for digest, data in contents.items()}

    def _write_all(self, contents: Mapping[str, bytes]) -> None:
        for digest, data in contents.items():
            final = self.path_of(digest)
            if final.is_file():
                continue  # content-addressed: already the same bytes
            tmp = self._tmp / f"{digest}.{secrets.token_hex(8)}"
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                final.parent.mkdir(exist_ok=True)
                os.replace(tmp, final)
            finally:
                tmp.unlink(missing_ok=True)

    async def read(self, digest: str) -> AsyncIterator[bytes]:
        """The blob's bytes in chunks, read on a worker thread."""
        f = await trio.to_thread.run_sync(open, self.path_of(digest), "rb")
        try:
            while chunk := await trio.to_thread.run_sync(f.read, CHUNK_SIZE):
                yield chunk
        finally:
            f.close()
