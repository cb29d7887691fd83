"""Which changed files `leasefs commit` takes as this agent's, and what git says changed."""

from __future__ import annotations

import subprocess
from pathlib import Path

from leasefs.cli._commit import choose_own, git_changes
from leasefs.wire import AgentInfo, Version

H1, H2 = "1" * 64, "2" * 64


def version(author: str, hash: str | None, deleted: bool = False) -> Version:
    return Version(
        id=1, path="p", branch="main", hash=hash, deleted=deleted, base_hash=None, size=None,
        mode=None, token=1, author=AgentInfo(id=1, name=author, host="", tool="", joined_at=0),
        created_at=0,
    )  # fmt: skip


def test_held_by_it_or_last_recorded_by_it_unchanged_since_is_the_agents() -> None:
    changed = ["held", "theirs-held", "mine", "theirs", "touched", "gone", "untracked-by-us"]
    holders = {"held": "bob", "theirs-held": "carol"}
    latest = {"held": None, "mine": version("bob", H1), "theirs": version("carol", H1),
              "touched": version("bob", H1), "gone": version("bob", None, deleted=True)}  # fmt: skip
    local = {"held": H2, "mine": H1, "theirs": H1, "touched": H2, "gone": None}
    verdict = choose_own("bob", changed, holders, latest, local)
    assert verdict.mine == ["held", "mine", "gone"]
    assert verdict.others == {
        "theirs-held": "held by carol",
        "theirs": "last changed by carol",
        "touched": "changed since your last version of it",
        "untracked-by-us": "changed by nobody through leasefs (git or a tool outside the mount)",
    }


def test_git_changes_lists_modified_new_deleted_and_both_names_of_a_rename(
    tmp_path: Path,
) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, timeout=60)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text(name)
    git("add", ".")
    git("commit", "-qm", "seed")
    (tmp_path / "a.txt").write_text("changed")
    (tmp_path / "b.txt").unlink()
    git("mv", "c.txt", "d with space.txt")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "new.txt").write_text("new")
    assert sorted(git_changes(tmp_path)) == sorted(
        ["a.txt", "b.txt", "c.txt", "d with space.txt", "sub/new.txt"]
    )
