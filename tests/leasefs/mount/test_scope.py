"""Scope follows git's ignore rules, checked against git itself."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from leasefs._mount._scope import Scope


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, timeout=30)
    (tmp_path / ".gitignore").write_text("*.log\nbuild/\n!keep.log\n/top-only.txt\n*.swp\n")
    (tmp_path / "src" / "deep").mkdir(parents=True)
    (tmp_path / "src" / ".gitignore").write_text("generated.py\n!important.log\n")
    (tmp_path / "build").mkdir()
    (tmp_path / ".git" / "info").mkdir(exist_ok=True)
    (tmp_path / ".git" / "info" / "exclude").write_text("local-notes.md\n")
    return tmp_path


CASES = [
    "README.md", "debug.log", "keep.log", "build/out.o", "build/keep.log", "src/build/x",
    "top-only.txt", "src/top-only.txt", "src/generated.py", "src/deep/generated.py",
    "generated.py", "src/important.log", "src/deep/important.log", "local-notes.md",
    ".main.py.swp", "src/deep/a.py", ".gitignore", "src/.gitignore",
]  # fmt: skip


def git_ignores(repo: Path, path: str) -> bool:
    result = subprocess.run(
        ["git", "-C", str(repo), "check-ignore", "-q", "--no-index", path], timeout=30
    )
    return result.returncode == 0


@pytest.mark.parametrize("path", CASES)
def test_scope_agrees_with_git_check_ignore(repo: Path, path: str) -> None:
    fd = os.open(repo, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert Scope(fd).is_ignored(path) == git_ignores(repo, path)
    finally:
        os.close(fd)


def test_git_dir_is_never_leased_and_changes_to_gitignore_apply(repo: Path) -> None:
    fd = os.open(repo, os.O_RDONLY | os.O_DIRECTORY)
    try:
        scope = Scope(fd)
        assert not scope.is_leased(".git/index")
        assert not scope.is_leased(".git")
        assert scope.is_leased("notes.txt")
        (repo / ".gitignore").write_text("*.log\nbuild/\nnotes.txt\n")
        assert not scope.is_leased("notes.txt")
    finally:
        os.close(fd)
