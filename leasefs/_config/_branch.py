"""Which git branch a working tree has checked out, read from its HEAD file.

A mount records versions on, and applies versions of, its tree's branch only: a clone on
``feature`` must not absorb the work in progress of one on ``main``. Read without git, from a
directory descriptor through ``/proc/<pid>/fd/<descriptor>`` (a magic link to the real
directory), so that the mount daemon can look underneath its own mount (running git in the
mounted tree from the thread that serves it would wait on itself). A worktree's ``.git`` is a
file naming the git directory; a detached HEAD is its own branch, ``detached@<commit>``.
"""

from __future__ import annotations

import os

from ..wire import DEFAULT_BRANCH

__all__ = ["checked_out_branch", "git_dir"]

_REF_PREFIX = "ref: refs/heads/"


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(4096)
    except OSError:
        return None


def git_dir(root_fd: int) -> str | None:
    """The git directory of the working tree open at ``root_fd``, as a path that does not go
    through a mount over it; None if it is no git working tree."""
    base = f"/proc/{os.getpid()}/fd/{root_fd}"
    dot_git = os.path.join(base, ".git")
    if os.path.isdir(dot_git):
        return dot_git
    pointer = _read(dot_git)  # a worktree or submodule: "gitdir: PATH"
    if pointer is None or not pointer.startswith("gitdir:"):
        return None
    target = pointer.removeprefix("gitdir:").strip()
    return target if os.path.isabs(target) else os.path.join(base, target)


def checked_out_branch(root_fd: int) -> str:
    """The branch checked out in the working tree open at ``root_fd``; `DEFAULT_BRANCH` if
    it is no git working tree (or its HEAD cannot be read)."""
    found = git_dir(root_fd)
    head = None if found is None else _read(os.path.join(found, "HEAD"))
    if head is None:
        return DEFAULT_BRANCH
    head = head.strip()
    if head.startswith(_REF_PREFIX):
        return head.removeprefix(_REF_PREFIX) or DEFAULT_BRANCH
    if head:
        return f"detached@{head[:12]}"
    return DEFAULT_BRANCH
