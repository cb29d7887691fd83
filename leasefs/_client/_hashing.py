"""Content addresses of files: sha256 read in chunks, never a whole file in memory.

Apart from the HTTP code because they are plain blocking reads, run in a worker thread by the
blob uploads (`_snapshots`), and `sha256_of_file` is used on its own.
"""

from __future__ import annotations

import hashlib
import os

from ..wire import SMALL_BLOB_BYTES

CHUNK_SIZE = 1 << 20
"""Bytes read, hashed, uploaded or downloaded at a time."""


def sha256_of_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """The content address and size of a file, read in chunks (never whole in memory)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _small_content_of_fd(fd: int) -> bytes | None:
    """The whole content behind ``fd`` if it is at most `SMALL_BLOB_BYTES`, else None."""
    data = os.pread(fd, SMALL_BLOB_BYTES + 1, 0)
    return data if len(data) <= SMALL_BLOB_BYTES else None


def _sha256_of_fd(fd: int) -> tuple[str, int]:
    """Like `sha256_of_file` for an open file, read with pread (its offset untouched)."""
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, CHUNK_SIZE, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest(), offset
