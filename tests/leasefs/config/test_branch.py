"""The branch a tree has checked out, read from HEAD without git (as the mount does)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from leasefs._config import checked_out_branch


@contextmanager
def opened(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=t@x", "-c", "user.name=t", *args], cwd=cwd,
                          check=True, capture_output=True, text=True, timeout=60).stdout  # fmt: skip


def test_a_branch_a_worktrees_branch_a_detached_head_and_no_git(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "trunk")
    git(repo, "commit", "-q", "--allow-empty", "-m", "one")
    with opened(repo) as fd:
        assert checked_out_branch(fd) == "trunk"
        git(repo, "switch", "-q", "-c", "feature/x")
        assert checked_out_branch(fd) == "feature/x"
        sha = git(repo, "rev-parse", "HEAD").strip()
        git(repo, "switch", "-q", "--detach")
        assert checked_out_branch(fd) == f"detached@{sha[:12]}"
    git(repo, "worktree", "add", "-q", "-b", "side", str(tmp_path / "wt"))
    assert (tmp_path / "wt" / ".git").is_file()  # "gitdir: …/repo/.git/worktrees/wt"
    with opened(tmp_path / "wt") as fd:
        assert checked_out_branch(fd) == "side"
    with opened(tmp_path) as fd:
        assert checked_out_branch(fd) == "main"  # no git working tree: the default
