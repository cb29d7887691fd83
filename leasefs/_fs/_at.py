"""Reaching a backing path of any length: through the root descriptor, or its parent's.

Every backing call names its file relative to the root descriptor. A relative path longer
than the kernel's PATH_MAX (4,096 bytes) fails with ENAMETOOLONG even where the native
filesystem reaches it (a process there works from a deep current folder); such a path is
reached through a descriptor of its parent folder, opened a stretch of components at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["at", "backing_at"]

_DIRECT_MAX = 3072
"""Relative paths up to this many bytes go to the kernel as they are (the common case)."""

_PARENT_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


@contextmanager
def at(root: int, path: str) -> Iterator[tuple[int, str]]:
    """``(directory descriptor, relative name)`` by which a backing call reaches ``path``
    (repository-relative, "" for the root): ``(root, path)`` while it is short, else a
    descriptor of its parent, closed on leaving."""
    if len(path) < _DIRECT_MAX // 4 or len(os.fsencode(path)) <= _DIRECT_MAX:
        yield root, path or "."
        return
    parent, _, name = path.rpartition("/")
    fd = _open_folder(root, parent)
    try:
        yield fd, name
    finally:
        os.close(fd)


def _open_folder(root: int, path: str) -> int:
    """A descriptor of the folder ``path`` under ``root``, opened in stretches short enough
    for the kernel."""
    fd = root
    rest = path
    while rest:
        stretch, rest = _stretch(rest)
        try:
            opened = os.open(stretch, _PARENT_FLAGS, dir_fd=fd)
        finally:
            if fd != root:
                os.close(fd)
        fd = opened
    return fd if fd != root else os.open(".", _PARENT_FLAGS, dir_fd=root)


def _stretch(path: str) -> tuple[str, str]:
    """The leading components of ``path`` that fit in `_DIRECT_MAX` bytes, and the rest."""
    parts = path.split("/")
    taken: list[str] = []
    size = 0
    for part in parts:
        cost = len(os.fsencode(part)) + 1
        if taken and size + cost > _DIRECT_MAX:
            break
        taken.append(part)
        size += cost
    return "/".join(taken), "/".join(parts[len(taken) :])


backing_at = at
"""`at`, by the name the mount's layer knows it under (`leasefs._fs.backing_at`)."""
