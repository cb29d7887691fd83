"""Which paths the mount leases: everything but ``.git/``, what git ignores, and paths too
long for the coordinator (over `wire.MAX_PATH_BYTES` from the root: they work as natively,
reached through their folders, but are neither leased nor shared).

Ignored paths (build output, caches, editor swap files) pass straight through and are never
snapshotted. Rules follow git: ``.git/info/exclude`` and every ``.gitignore`` from the root
down to the file's directory, deeper files and later lines winning, negation (``!``)
included, and nothing under an ignored directory can be re-included. Files are read through
the repository's directory descriptor and re-read when they change.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from dataclasses import dataclass

import pathspec

from .._fs import backing_at
from ..wire import MAX_PATH_BYTES

_GIT_DIR = ".git"


@dataclass(frozen=True)
class _Spec:
    stamp: tuple[int, int, int] | None
    spec: pathspec.GitIgnoreSpec | None


class Scope:
    """Answers `is_leased` for repository-relative paths of one repository."""

    def __init__(self, root_fd: int) -> None:
        self._root_fd = root_fd
        self._specs: dict[str, _Spec] = {}
        self._lock = threading.Lock()

    def is_leased(self, path: str) -> bool:
        """True if a change to ``path`` needs a lease (``path`` is canonical, non-empty)."""
        if path == _GIT_DIR or path.startswith(_GIT_DIR + "/"):
            return False
        if len(path) > MAX_PATH_BYTES // 4 and len(os.fsencode(path)) > MAX_PATH_BYTES:
            return False  # no lease key can name it: it passes through, as ignored files do
        return not self.is_ignored(path)

    def is_ignored(self, path: str) -> bool:
        parts = path.split("/")
        # An ignored parent directory hides everything below it, whatever the deeper rules say.
        for depth in range(1, len(parts)):
            if self._verdict("/".join(parts[:depth]), is_dir=True):
                return True
        return self._verdict(path, is_dir=self._is_dir(path))

    def _verdict(self, path: str, *, is_dir: bool) -> bool:
        parts = path.split("/")
        ignored = False
        sources = [(".git/info/exclude", "")] + [
            ("/".join([*parts[:depth], ".gitignore"]).lstrip("/"), "/".join(parts[:depth]))
            for depth in range(len(parts))
        ]
        for source, base in sources:
            spec = self._spec(source)
            if spec is None:
                continue
            relative = path[len(base) + 1 :] if base else path
            if is_dir:
                relative += "/"
            result = spec.check_file(relative)
            if result.include is not None:
                ignored = bool(result.include)
        return ignored

    def _is_dir(self, path: str) -> bool:
        try:
            with backing_at(self._root_fd, path) as (folder, leaf):
                st = os.stat(leaf, dir_fd=folder, follow_symlinks=False)
        except OSError:
            return False
        return stat.S_ISDIR(st.st_mode)

    def _spec(self, source: str) -> pathspec.GitIgnoreSpec | None:
        try:
            with backing_at(self._root_fd, source) as (folder, leaf):
                st = os.stat(leaf, dir_fd=folder, follow_symlinks=False)
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise
            stamp = None
        with self._lock:
            cached = self._specs.get(source)
        if cached is not None and cached.stamp == stamp:
            return cached.spec
        spec = self._load(source) if stamp is not None else None
        with self._lock:
            self._specs[source] = _Spec(stamp, spec)
        return spec

    def _load(self, source: str) -> pathspec.GitIgnoreSpec | None:
        try:
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # never a FIFO wait
            with backing_at(self._root_fd, source) as (folder, leaf):
                fd = os.open(leaf, flags, dir_fd=folder)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            lines = f.read(1 << 20).decode("utf-8", errors="replace").splitlines()
        return pathspec.GitIgnoreSpec.from_lines(lines)
