"""Two clones of one git repository, each mounted by `leasefs mount` as a different agent.

Each mount daemon is a child of the test (`tests.helpers.AgentMount`: ``leasefs mount
--foreground``), so it is stopped by its PID whatever happens; every mount is taken away in a
finalizer that runs on failure too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import AgentMount, CoordinatorProcess, run, stop_all


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A bare repository with two commits of a small project."""
    seed = tmp_path / "seed"
    bare = tmp_path / "origin.git"
    run("git", "init", "-q", "--bare", "-b", "main", bare)
    run("git", "init", "-q", "-b", "main", seed)
    (seed / "src").mkdir()
    (seed / "src" / "app.py").write_text("print('v0')\n")
    (seed / "README.md").write_text("# project\n")
    (seed / ".gitignore").write_text("*.log\n__pycache__/\n")
    run("git", "add", ".", cwd=seed)
    run("git", "commit", "-qm", "first", cwd=seed)
    (seed / "src" / "app.py").write_text("print('v1')\n")
    run("git", "commit", "-qam", "second", cwd=seed)
    run("git", "push", "-q", str(bare), "main", cwd=seed)
    return bare


MountFactory = Callable[..., AgentMount]


@pytest.fixture
def mount_agent(
    coordinator: CoordinatorProcess, tmp_path: Path, origin: Path, workspace_name: str
) -> Iterator[MountFactory]:
    """``mount_agent("alice", *options)``: a fresh clone of origin, mounted as that agent."""
    mounts: list[AgentMount] = []

    def factory(
        agent: str, *options: str, clone: bool = True, coordinator_url: str | None = None
    ) -> AgentMount:
        repo = tmp_path / agent
        if clone and not repo.exists():
            run("git", "clone", "-q", origin, repo)
        data = tmp_path / f"{agent}-data"
        data.mkdir(exist_ok=True)
        url = coordinator_url or coordinator.url
        mount = AgentMount(repo, agent, workspace_name, url, data, *options)
        mounts.append(mount)
        return mount.start()

    try:
        yield factory
    finally:
        stop_all(mounts)
