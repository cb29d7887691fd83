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


class TempWriter:
    """New content written to a temporary file beside ``path``, to be moved into place.

    Blocking: use from a worker thread, chunk by chunk; then `seal`, then either
    `rename_into_place` (readers see the old file or the new one, never half), `copy_in_place`
    (the file keeps its identity, for a path a request is waiting on), or `discard`.
    """

    def __init__(self, root_fd: int, path: str, make_dirs: bool = True) -> None:
        self.root_fd = root_fd
        self.path = path
        if make_dirs:
            make_parents(root_fd, path)
        self.temp = temp_name_beside(path)
        self.fd = os.open(
            self.temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600, dir_fd=root_fd
        )

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            view = view[os.write(self.fd, view) :]

    def seal(self, mode: int | None) -> None:
        self.mode = mode if mode is not None else _default_mode(self.root_fd, self.path)
        os.fchmod(self.fd, self.mode)
        os.fsync(self.fd)

    def rename_into_place(self) -> None:
        self._close()
        os.rename(self.temp, self.path, src_dir_fd=self.root_fd, dst_dir_fd=self.root_fd)

    def copy_in_place(self) -> None:
        size = os.fstat(self.fd).st_size
        target = os.open(
            self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, self.mode,
            dir_fd=self.root_fd,
        )  # fmt: skip
        try:
            offset = 0
            while offset < size:
                copied = os.copy_file_range(self.fd, target, size - offset, offset, offset)
                if copied == 0:
                    break
                offset += copied
            os.fchmod(target, self.mode)
            os.fsync(target)
        finally:
            os.close(target)
        self.discard()

    def _close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def discard(self) -> None:
        self._close()
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
