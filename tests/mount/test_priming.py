"""The first `git status` after mounting finds the kernel's entries primed: a listing per
folder, made by the mount as it comes up, instead of one lookup per file."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import AgentMount, run
from tests.mount.conftest import MountFactory

FOLDERS, FILES_PER_FOLDER = 15, 20


def lookups(mount: AgentMount) -> int:
    status = json.loads(mount.leasefs("status", str(mount.repo), "--json").stdout)[0]
    return int(status["lookups_served"])


def test_the_first_git_status_after_mounting_needs_almost_no_lookups(
    mount_agent: MountFactory, origin: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "alice"
    run("git", "clone", "-q", origin, repo)
    for f in range(FOLDERS):
        folder = repo / "pkg" / f"m{f:02d}"
        folder.mkdir(parents=True)
        for i in range(FILES_PER_FOLDER):
            (folder / f"f{i:02d}.py").write_text(f"x = {i}\n")
    (repo / "pkg" / "__pycache__").mkdir()  # ignored: not worth listing
    run("git", "add", ".", cwd=repo)
    run("git", "commit", "-qm", "many files", cwd=repo)
    alice = mount_agent("alice")  # the clone is there: mounted as it is
    before = lookups(alice)
    run("git", "status", cwd=alice.repo)
    spent = lookups(alice) - before
    tracked = FOLDERS * FILES_PER_FOLDER
    # Unprimed, each tracked file is a lookup, plus git's probes for names that do not exist
    # (a .gitattributes per folder, refs), which no listing can answer: 360 and more here.
    # Primed, only those probes are left.
    assert spent < tracked // 3, f"{spent} lookups for {tracked} tracked files"
