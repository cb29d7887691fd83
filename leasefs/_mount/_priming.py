"""Priming the kernel's entries right after mounting: one listing per folder, not one lookup
per file.

The first `git status` after mounting looks up every tracked file before it lists a single
folder, and each lookup is a request to the daemon (most of what that first run costs). A
folder's listing, though, hands the kernel every entry with its attributes in one request
(READDIRPLUS), after which lookups of those names are answered from the kernel's cache. So
the daemon lists the tree through its own mount once, in a worker thread, before it says it
is ready (or for as long as `prime` is allowed, then in the background): folders git ignores
and the object store under ``.git/objects`` are skipped (the rest of ``.git`` is what git
reads first), the walk stops after `limit` entries.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from pathlib import Path

__all__ = ["PRIME_LIMIT", "prime"]

PRIME_LIMIT = 200_000
"""Entries primed at most: the kernel keeps each (a dentry and an inode, under a KiB), and a
tree larger than this is primed where git status looks first (breadth-first)."""


def prime(
    mount_root: Path,
    is_leased: Callable[[str], bool],
    limit: int = PRIME_LIMIT,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """List every folder of the tree through the mount at `mount_root`, breadth-first;
    `is_leased` says which folders are worth it (not ``.git``, not ignored). Returns how
    many entries the kernel was handed. Never raises for a folder that went away."""
    seen = 0
    folders: deque[str] = deque([""])
    while folders and seen < limit and not stop():
        folder = folders.popleft()
        try:
            with os.scandir(mount_root / folder if folder else mount_root) as entries:
                for entry in entries:
                    seen += 1
                    if not entry.is_dir(follow_symlinks=False):
                        continue
                    path = f"{folder}/{entry.name}" if folder else entry.name
                    if _worth_listing(path, is_leased):
                        folders.append(path)
        except OSError:
            continue  # removed meanwhile, or not ours to list
    return seen


def _worth_listing(path: str, is_leased: Callable[[str], bool]) -> bool:
    if path == ".git" or path.startswith(".git/"):
        return not path.startswith(".git/objects/")  # git finds objects by name, in packs
    return is_leased(path)
