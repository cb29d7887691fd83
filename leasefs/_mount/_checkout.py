"""Telling a git checkout's file changes from an agent's edits.

`git switch` rewrites the tree's files through the mount, so their leases are taken like any
write. But that content is the branch's, committed already: recorded as this agent's versions
it would stream into every other mount as an edit. So when the branch changes, each held file
whose content is now exactly the new HEAD's is *rebased*: its lease's base becomes that
content, and it goes back without a version unless the agent changes it again. While git
holds ``.git/index.lock`` (a checkout, reset or merge under way) nothing is given back yet.

Everything is read underneath the mount: files through the daemon's directory descriptor,
git's objects through `git_dir`, so the serving thread never waits on its own mount.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from collections.abc import Sequence

from .._config import git_dir
from . import _backing

__all__ = ["git_lock", "matching_head", "merge_base_time"]

_GIT_TIMEOUT_S = 60.0


def git_lock(root_fd: int) -> tuple[int, int] | None:
    """Git's index lock, if a git command is rewriting the tree or its index right now: its
    inode and modification time (the same pair again is the same lock, perhaps a stale one
    a killed git left)."""
    found = git_dir(root_fd)
    if found is None:
        return None
    try:
        st = os.stat(os.path.join(found, "index.lock"))
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def _git_blob_and_sha256(root_fd: int, path: str) -> tuple[str, str] | None:
    """The file's git blob id and sha256; None if it is missing or not a regular file."""
    try:
        fd = _backing.open_for_reading(root_fd, path)  # non-blocking: a FIFO never stalls
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        blob = hashlib.sha1(b"blob %d\0" % st.st_size, usedforsecurity=False)
        content = hashlib.sha256()
        while chunk := os.read(fd, _backing.CHUNK_SIZE):
            blob.update(chunk)
            content.update(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return blob.hexdigest(), content.hexdigest()


def _head_blobs(found: str, paths: Sequence[str]) -> dict[str, str]:
    try:
        listed = subprocess.run(
            ["git", "--git-dir", found, "ls-tree", "-z", "--full-tree", "HEAD", "--", *paths],
            capture_output=True, check=True, timeout=_GIT_TIMEOUT_S,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {}
    blobs: dict[str, str] = {}
    for entry in listed.split(b"\0"):
        meta, _, name = entry.partition(b"\t")
        fields = meta.split()
        if len(fields) == 3 and fields[1] == b"blob":
            blobs[name.decode("utf-8", "surrogateescape")] = fields[2].decode()
    return blobs


def matching_head(root_fd: int, paths: Sequence[str]) -> dict[str, str | None]:
    """Of ``paths``, those whose file is exactly what HEAD has (or, absent from HEAD, is
    absent here too), with the sha256 of that content (None: no file). Blocking."""
    found = git_dir(root_fd)
    if found is None or not paths:
        return {}
    blobs = _head_blobs(found, paths)
    matching: dict[str, str | None] = {}
    for path in paths:
        local = _git_blob_and_sha256(root_fd, path)
        if local is None:
            if path not in blobs:
                matching[path] = None
        elif blobs.get(path) == local[0]:
            matching[path] = local[1]
    return matching


def merge_base_time(root_fd: int, branch: str) -> float | None:
    """When the tree's HEAD and ``branch`` (local, else origin's) last met: the commit time of
    their merge base; None if git does not know the branch here. Blocking."""
    found = git_dir(root_fd)
    if found is None:
        return None
    for ref in (f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"):
        try:
            base = subprocess.run(
                ["git", "--git-dir", found, "merge-base", "HEAD", ref],
                capture_output=True, text=True, check=True, timeout=_GIT_TIMEOUT_S,
            ).stdout.strip()  # fmt: skip
            shown = subprocess.run(
                ["git", "--git-dir", found, "show", "-s", "--format=%ct", base],
                capture_output=True, text=True, check=True, timeout=_GIT_TIMEOUT_S,
            ).stdout.strip()  # fmt: skip
            return float(shown)
        except (OSError, subprocess.SubprocessError, ValueError):
            continue
    return None
