"""File operations on the backing directory, always relative to its descriptor.

The mount sits on the repository itself, so the real files are reachable only through the
directory descriptor opened before mounting. These helpers are blocking: call them from a
worker thread (`trio.to_thread.run_sync`).

Every path is resolved one component at a time with ``O_NOFOLLOW``: a symbolic link on the
way (say ``vendor -> /home/me/.ssh``, brought in by a git pull) makes the operation fail with
`SymlinkOnPath` instead of reading or writing outside the repository. A path that reaches us
from another agent is only a name: it must mean the same file in every clone.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field

CHUNK_SIZE = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class SymlinkOnPath(OSError):
    """A directory on the way to a path is a symbolic link (or not a directory at all)."""


@contextlib.contextmanager
def parent_of(base_fd: int, path: str, *, create: bool = False) -> Iterator[tuple[int, str]]:
    """The directory holding ``path``'s last component, as a descriptor reached from
    ``base_fd`` without following any symbolic link, and that last name. With ``create``,
    missing directories on the way are made (mode 0755)."""
    *dirs, name = path.split("/")
    fd = os.dup(base_fd)
    try:
        for depth, part in enumerate(dirs):
            try:
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                where = "/".join(dirs[: depth + 1])
                raise SymlinkOnPath(
                    exc.errno, f"{where} is a symbolic link or not a directory", path
                ) from exc
            os.close(fd)
            fd = next_fd
        yield fd, name
    finally:
        os.close(fd)


@dataclass(frozen=True)
class FileState:
    """What a regular file holds now: its content address, size and permission bits, and
    the content itself when it was asked for and small enough."""

    hash: str
    size: int
    mode: int
    content: bytes | None = field(default=None, repr=False)


def is_special_file(root_fd: int, path: str) -> bool:
    """``path`` is a FIFO, socket or device: never to be opened for its content (opening a
    FIFO blocks until a writer comes; a device may act on being opened)."""
    try:
        with parent_of(root_fd, path) as (dir_fd, name):
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return False
    return not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode))


def read_state(root_fd: int, path: str, *, keep_up_to: int = -1) -> FileState | None:
    """The state of regular file ``path``; None if it does not exist, is not a regular file,
    or is reached through a symbolic link. Its content is kept if at most ``keep_up_to``
    bytes: read once, so it is certain to be what the hash says. A special file is never
    opened."""
    if is_special_file(root_fd, path):
        return None
    try:
        fd = open_for_reading(root_fd, path)
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
        kept: list[bytes] | None = [] if keep_up_to >= 0 else None
        while chunk := os.read(fd, CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
            if kept is not None and size <= keep_up_to:
                kept.append(chunk)
            else:
                kept = None
        content = b"".join(kept) if kept is not None else None
        mode = stat.S_IMODE(st.st_mode)
        return FileState(hash=digest.hexdigest(), size=size, mode=mode, content=content)
    finally:
        os.close(fd)


def open_for_reading(root_fd: int, path: str) -> int:
    """A descriptor to read ``path`` from. Non-blocking, so a FIFO put in its place since it
    was looked at cannot stall the caller; a regular file reads the same either way."""
    with parent_of(root_fd, path) as (dir_fd, name):
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        return os.open(name, flags, dir_fd=dir_fd)


def temp_name_beside(path: str) -> str:
    head, _, name = path.rpartition("/")
    temp = f".{name[:40]}.leasefs-{secrets.token_hex(6)}"
    return f"{head}/{temp}" if head else temp


class TempWriter:
    """New content written to a temporary file beside ``path``, to be moved into place.

    Blocking: use from a worker thread, chunk by chunk; then `seal`, then either
    `rename_into_place` (readers see the old file or the new one, never half), `copy_in_place`
    (the file keeps its identity, for a path a request is waiting on), or `discard`.
    ``temp`` is the temporary file's path, beside ``path``.
    """

    def __init__(self, root_fd: int, path: str, make_dirs: bool = True) -> None:
        self.root_fd = root_fd
        self.path = path
        self.temp = temp_name_beside(path)
        self.name = path.rpartition("/")[2]
        self._temp_name = self.temp.rpartition("/")[2]
        with parent_of(root_fd, path, create=make_dirs) as (dir_fd, _):
            self.dir_fd = os.dup(dir_fd)
        try:
            self.fd = os.open(
                self._temp_name,
                os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=self.dir_fd,
            )
        except BaseException:
            os.close(self.dir_fd)
            raise

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            view = view[os.write(self.fd, view) :]

    def seal(self, mode: int | None) -> None:
        self.mode = mode if mode is not None else _default_mode(self.dir_fd, self.name)
        os.fchmod(self.fd, self.mode)
        os.fsync(self.fd)

    def rename_into_place(self) -> None:
        self._close()
        os.rename(self._temp_name, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)

    def copy_in_place(self) -> None:
        size = os.fstat(self.fd).st_size
        target = os.open(
            self.name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
            self.mode, dir_fd=self.dir_fd,
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
        if self.dir_fd >= 0:
            with contextlib.suppress(OSError):
                os.unlink(self._temp_name, dir_fd=self.dir_fd)
            os.close(self.dir_fd)
            self.dir_fd = -1


def _default_mode(dir_fd: int, name: str) -> int:
    try:
        return stat.S_IMODE(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return 0o644


def remove(root_fd: int, path: str) -> None:
    with contextlib.suppress(FileNotFoundError), parent_of(root_fd, path) as (dir_fd, name):
        os.unlink(name, dir_fd=dir_fd)


def chmod(root_fd: int, path: str, mode: int) -> None:
    with parent_of(root_fd, path) as (dir_fd, name):
        os.chmod(name, mode, dir_fd=dir_fd, follow_symlinks=False)


def rename_beside(base_fd: int, temp: str, path: str) -> None:
    """Move ``temp`` (a name in ``path``'s directory) onto ``path``, resolved from ``base_fd``."""
    with parent_of(base_fd, path) as (dir_fd, name):
        os.rename(temp.rpartition("/")[2], name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def make_parents(base_fd: int, path: str) -> None:
    """Create the directories above ``path`` that do not exist yet."""
    with parent_of(base_fd, path, create=True):
        pass
