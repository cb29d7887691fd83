"""File operations on the backing directory, always relative to its descriptor.

The mount sits on the repository itself, so the real files are reachable only through the
directory descriptor opened before mounting. These helpers are blocking: call them from a
worker thread (`trio.to_thread.run_sync`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass

CHUNK_SIZE = 1 << 20


@dataclass(frozen=True)
class FileState:
    """What a regular file holds now: its content address, size and permission bits."""

    hash: str
    size: int
    mode: int


def read_state(root_fd: int, path: str) -> FileState | None:
    """The state of regular file ``path``; None if it does not exist (or is not a file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=root_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        digest = hashlib.sha256()
        size = 0
        while chunk := os.read(fd, CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
        return FileState(hash=digest.hexdigest(), size=size, mode=stat.S_IMODE(st.st_mode))
    finally:
        os.close(fd)


def open_for_reading(root_fd: int, path: str) -> int:
    return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=root_fd)


def make_parents(root_fd: int, path: str) -> None:
    """Create the directories above ``path`` that do not exist yet."""
    parts = path.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        with contextlib.suppress(FileExistsError):
            os.mkdir("/".join(parts[:depth]), 0o755, dir_fd=root_fd)


def temp_name_beside(path: str) -> str:
    head, _, name = path.rpartition("/")
    temp = f".{name[:40]}.leasefs-{secrets.token_hex(6)}"
    return f"{head}/{temp}" if head else temp


class AtomicWriter:
    """A new version of ``path`` written beside it, then renamed over it in one step.

    Readers see the old file or the new one, never half of either. Blocking: use from a
    worker thread, chunk by chunk.
    """

    def __init__(self, root_fd: int, path: str) -> None:
        self.root_fd = root_fd
        self.path = path
        make_parents(root_fd, path)
        self.temp = temp_name_beside(path)
        self.fd = os.open(
            self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600, dir_fd=root_fd
        )

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            view = view[os.write(self.fd, view) :]

    def commit(self, mode: int | None) -> None:
        try:
            os.fchmod(self.fd, mode if mode is not None else _default_mode(self.root_fd, self.path))
            os.fsync(self.fd)
        finally:
            os.close(self.fd)
            self.fd = -1
        os.rename(self.temp, self.path, src_dir_fd=self.root_fd, dst_dir_fd=self.root_fd)

    def discard(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        with contextlib.suppress(OSError):
            os.unlink(self.temp, dir_fd=self.root_fd)


def _default_mode(root_fd: int, path: str) -> int:
    try:
        return stat.S_IMODE(os.stat(path, dir_fd=root_fd, follow_symlinks=False).st_mode)
    except OSError:
        return 0o644


def remove(root_fd: int, path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path, dir_fd=root_fd)
