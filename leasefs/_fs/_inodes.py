"""The inode table: which repository path each inode number the kernel holds stands for.

The kernel names files by inode number; leases name them by repository-relative path. The
table keeps both directions, counts the kernel's lookups so an entry lives exactly as long as
the kernel may still send its number, and follows renames and unlinks made through the mount.

An inode number is the backing file's own ``st_ino`` whenever that number is free in the table
(so `git`'s index, which records ``st_ino``, stays valid across mounting), otherwise the next
free number from a high range. A number is never given to two live entries at once; once the
kernel has forgotten an entry its number may be given out again, which FUSE allows.

A path whose backing file was replaced underneath (a different device/inode pair than the one
recorded) gets a fresh entry; the old entry is detached (``path is None``) and lives on only
until the kernel forgets it. This module does no I/O: callers pass in the `os.stat_result`.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from typing import NewType

import pyfuse3

__all__ = ["ROOT_INODE", "InodeId", "InodeTable"]

InodeId = NewType("InodeId", int)
ROOT_INODE = InodeId(pyfuse3.ROOT_INODE)

# Numbers handed out when the backing st_ino is taken: far above what ext4 or tmpfs use.
_FALLBACK_START = 1 << 48
_MAX_INODE = (1 << 64) - 1


REPLACED_GRACE_S = 5.0
"""How long a lookup the kernel made just before a file was replaced underneath (an incoming
version moved into place) may still read or stat it: it gets the replacement, as a lookup a
moment later would, instead of ENOENT for a file that never stopped existing."""


@dataclass(slots=True)
class _Node:
    path: str | None
    key: tuple[int, int]
    kind: int
    lookups: int = 0
    former: str | None = None  # the path it had until unlinked or replaced
    detached_at: float = 0.0


def join(parent: str, name: str) -> str:
    """The repository path of `name` inside the directory `parent` ('' is the root)."""
    return f"{parent}/{name}" if parent else name


def split(path: str) -> tuple[str, str]:
    """(parent, name) of a non-root repository path."""
    parent, _, name = path.rpartition("/")
    return parent, name


class InodeTable:
    """Inode numbers <-> repository paths, with the kernel's lookup counts."""

    def __init__(self, root: os.stat_result) -> None:
        self._nodes: dict[InodeId, _Node] = {
            ROOT_INODE: _Node("", _key(root), stat.S_IFDIR, lookups=1)
        }
        self._by_path: dict[str, InodeId] = {"": ROOT_INODE}
        self._by_key: dict[tuple[int, int], list[InodeId]] = {_key(root): [ROOT_INODE]}
        self._next_fallback = _FALLBACK_START

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, inode: object) -> bool:
        return inode in self._nodes

    def path_of(self, inode: InodeId) -> str | None:
        """The path `inode` stands for, or None once it was unlinked or replaced."""
        node = self._nodes.get(inode)
        return None if node is None else node.path

    def recent_former_path(self, inode: InodeId) -> str | None:
        """The path `inode` had if it was detached moments ago (see `REPLACED_GRACE_S`)."""
        node = self._nodes.get(inode)
        if node is None or node.former is None:
            return None
        if time.monotonic() - node.detached_at > REPLACED_GRACE_S:
            return None
        return node.former

    def id_of(self, path: str) -> InodeId | None:
        """The inode currently standing for `path`, if the kernel may know one."""
        return self._by_path.get(path)

    def kind_of(self, inode: InodeId) -> int:
        """The file type bits (``stat.S_IFMT``) seen when `inode` was last looked up."""
        node = self._nodes.get(inode)
        return 0 if node is None else node.kind

    def is_current(self, inode: InodeId, st: os.stat_result) -> bool:
        """Whether `st` is still the backing file `inode` was made for."""
        node = self._nodes.get(inode)
        return node is not None and node.key == _key(st)

    def others_of_file(self, inode: InodeId) -> list[InodeId]:
        """The other inodes the kernel holds for `inode`'s backing file: its other hard links,
        each an inode of its own to the kernel, with caches of its own."""
        node = self._nodes.get(inode)
        if node is None:
            return []
        sharing = self._by_key.get(node.key, [])
        return [other for other in sharing if other != inode] if len(sharing) > 1 else []

    def lookups(self, inode: InodeId) -> int:
        node = self._nodes.get(inode)
        return 0 if node is None else node.lookups

    def reserve(self, path: str, st: os.stat_result) -> InodeId:
        """The inode for `path` (whose backing file is `st`), without counting a lookup.

        Pair with `incref` once the kernel has the number, or `discard_unreferenced` if it
        never got it (a readdir buffer that was full).
        """
        inode = self._by_path.get(path)
        if inode is not None:
            node = self._nodes[inode]
            if node.key == _key(st):
                node.kind = stat.S_IFMT(st.st_mode)
                return inode
            if inode == ROOT_INODE:
                return inode
            self._detach(inode)
        inode = self._free_number(st.st_ino)
        self._nodes[inode] = _Node(path, _key(st), stat.S_IFMT(st.st_mode))
        self._by_path[path] = inode
        self._by_key.setdefault(_key(st), []).append(inode)
        return inode

    def lookup(self, path: str, st: os.stat_result) -> InodeId:
        """`reserve` and count one lookup: what lookup/create/mkdir/... replies need."""
        inode = self.reserve(path, st)
        self.incref(inode)
        return inode

    def incref(self, inode: InodeId) -> None:
        self._nodes[inode].lookups += 1

    def discard_unreferenced(self, inode: InodeId) -> None:
        """Drop an entry the kernel never heard of."""
        node = self._nodes.get(inode)
        if node is not None and node.lookups == 0 and inode != ROOT_INODE:
            self._drop(inode)

    def forget(self, inode: InodeId, count: int) -> None:
        """The kernel dropped `count` references; at zero the entry (and its number) goes."""
        node = self._nodes.get(inode)
        if node is None or inode == ROOT_INODE:
            return
        node.lookups -= count
        if node.lookups <= 0:
            self._drop(inode)

    def unlinked(self, path: str) -> None:
        """`path` (and, for a directory, everything below it) no longer exists."""
        doomed = [path, *self._below(path)]
        for gone in doomed:
            inode = self._by_path.get(gone)
            if inode is not None and inode != ROOT_INODE:
                self._detach(inode)

    def renamed(self, old: str, new: str) -> None:
        """`old` now lives at `new`; whatever was at `new` is gone."""
        source, target = self._by_path.get(old), self._by_path.get(new)
        if old == new or (
            source is not None
            and target is not None
            and self._nodes[source].key == self._nodes[target].key
        ):
            return  # rename(2) between two names of one file does nothing
        self.unlinked(new)
        moves = [(old, new)] + [(p, new + p[len(old) :]) for p in self._below(old)]
        self._move(moves)

    def exchanged(self, a: str, b: str) -> None:
        """`a` and `b` swapped places (RENAME_EXCHANGE)."""
        moves = [(a, b), (b, a)]
        moves += [(p, b + p[len(a) :]) for p in self._below(a)]
        moves += [(p, a + p[len(b) :]) for p in self._below(b)]
        self._move(moves)

    def _move(self, moves: list[tuple[str, str]]) -> None:
        inodes = [(self._by_path.pop(src, None), dst) for src, dst in moves]
        for inode, dst in inodes:
            if inode is not None:
                self._nodes[inode].path = dst
                self._by_path[dst] = inode

    def _below(self, path: str) -> list[str]:
        """Paths inside the directory `path` (empty for anything else: no scan then)."""
        inode = self._by_path.get(path)
        if not path or inode is None or self._nodes[inode].kind != stat.S_IFDIR:
            return []
        prefix = path + "/"
        return [p for p in self._by_path if p.startswith(prefix)]

    def _detach(self, inode: InodeId) -> None:
        node = self._nodes[inode]
        if node.path is not None and self._by_path.get(node.path) == inode:
            del self._by_path[node.path]
        node.former, node.detached_at = node.path, time.monotonic()
        node.path = None
        if node.lookups <= 0:
            del self._nodes[inode]
            self._unkey(inode, node)

    def _drop(self, inode: InodeId) -> None:
        node = self._nodes.pop(inode)
        if node.path is not None and self._by_path.get(node.path) == inode:
            del self._by_path[node.path]
        self._unkey(inode, node)

    def _unkey(self, inode: InodeId, node: _Node) -> None:
        sharing = self._by_key.get(node.key)
        if sharing is not None and inode in sharing:
            sharing.remove(inode)
            if not sharing:
                del self._by_key[node.key]

    def _free_number(self, preferred: int) -> InodeId:
        if ROOT_INODE < preferred <= _MAX_INODE and preferred not in self._nodes:
            return InodeId(preferred)
        while self._next_fallback in self._nodes:
            self._next_fallback += 1
        number = self._next_fallback
        self._next_fallback += 1
        return InodeId(number)


def _key(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)
