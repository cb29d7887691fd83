"""Which git branch a working tree has checked out, read from its HEAD file.

A mount records versions on, and applies versions of, its tree's branch only: a clone on
``feature`` must not absorb the work in progress of one on ``main``. Read without git, from a
directory descriptor, so that the mount daemon can look underneath its own mount (running git
in the mounted tree from the thread that serves it would wait on itself). A worktree's
``.git`` is a file naming the git directory; a detached HEAD is its own branch,
``detached@<commit>``.
"""

from __future__ import annotations

import os

from ..wire import DEFAULT_BRANCH

__all__ = ["checked_out_branch"]

_REF_PREFIX = "ref: refs/heads/"


def _read(path: str, dir_fd: int | None) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        return os.read(fd, 4096).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def checked_out_branch(root_fd: int) -> str:
    """The branch checked out in the working tree open at ``root_fd``; `DEFAULT_BRANCH` if
    it is no git working tree (or its HEAD cannot be read)."""
    head = _read(".git/HEAD", root_fd)
    if head is None:
        pointer = _read(".git", root_fd)  # a worktree or submodule: "gitdir: PATH"
        if pointer is None or not pointer.startswith("gitdir:"):
            return DEFAULT_BRANCH
        gitdir = pointer.removeprefix("gitdir:").strip()
        head = _read(os.path.join(gitdir, "HEAD"), None if os.path.isabs(gitdir) else root_fd)
        if head is None:
            return DEFAULT_BRANCH
    head = head.strip()
    if head.startswith(_REF_PREFIX):
        return head.removeprefix(_REF_PREFIX) or DEFAULT_BRANCH
    if head:
        return f"detached@{head[:12]}"
    return DEFAULT_BRANCH
