"""Clones on different branches: versions stay on their branch, leases do not (two branches
editing one file is tomorrow's merge conflict), and a mount follows `git switch`."""

from __future__ import annotations

import errno
import json
import re
import sys
from pathlib import Path

import pytest
import trio
from mcp import Client as McpClient
from mcp import StdioServerParameters

from leasefs import Client
from leasefs.wire import Version
from tests.helpers import AgentMount, run, wait_for
from tests.mount.conftest import MountFactory


def status(mount: AgentMount) -> dict[str, object]:
    answer: dict[str, object] = json.loads(
        mount.leasefs("status", "--json", str(mount.repo)).stdout
    )[0]
    return answer


async def mcp_check(mount: AgentMount, path: str) -> list[str]:
    """What `leasefs_check` (and the briefing) of an MCP session in the mount say of other
    branches."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "leasefs", "mcp"],
                                   env=mount.env, cwd=mount.repo)  # fmt: skip
    async with McpClient(params, read_timeout_seconds=60) as session:
        checked = await session.call_tool("leasefs_check", {"paths": [path]})
        briefed = await session.call_tool("leasefs_briefing", {})
    assert not checked.is_error and checked.structured_content is not None, checked.content
    assert not briefed.is_error and briefed.structured_content is not None, briefed.content
    found: list[str] = checked.structured_content["paths"][0]["other_branches"]
    assert briefed.structured_content["other_branches"] == found  # one file here: the same
    return found


def test_versions_stay_on_their_branch_leases_do_not_and_a_switch_is_followed(
    mount_agent: MountFactory, origin: Path, tmp_path: Path
) -> None:
    seed = tmp_path / "bob"  # bob works on branch feature (same files, one commit more)
    run("git", "clone", "-q", origin, seed)
    run("git", "switch", "-q", "-c", "feature", cwd=seed)
    run("git", "-c", "user.email=b@x", "-c", "user.name=b", "commit", "-q", "--allow-empty",
        "-m", "feature starts", cwd=seed)  # fmt: skip
    alice = mount_agent("alice", "--idle-grace", "60")
    bob = mount_agent("bob", "--wait", "0")
    assert status(alice)["branch"] == "main" and status(bob)["branch"] == "feature"
    assert "branch feature" in bob.leasefs("status", str(bob.repo)).stdout

    app = "src/app.py"
    with open(alice.repo / app, "a") as f:
        f.write("alice on main\n")
    # The lease is the workspace's, whatever the branch: bob cannot take it meanwhile.
    with pytest.raises(OSError) as refused:
        (bob.repo / app).write_text("bob on feature\n")
    assert refused.value.errno == errno.EBUSY
    alice.leasefs("release", str(alice.repo / app))
    # Free now; bob's grant brings no version of main: his file stays his branch's.
    with open(bob.repo / app, "a") as f:
        f.write("bob on feature\n")
    assert (bob.repo / app).read_text() == "print('v1')\nbob on feature\n"
    # ...but bob hears that main changed it since the branches met: a merge conflict to come.
    notice = re.compile(r"src/app\.py was changed on main by alice \(version \d+\)")
    wait_for(lambda: any(notice.fullmatch(n) for n in status(bob)["notices"]),  # type: ignore[attr-defined]
             what="the notice in bob's status")  # fmt: skip
    assert (
        "NOTICE src/app.py was changed on main by alice"
        in bob.leasefs("status", str(bob.repo)).stdout
    )
    assert any(notice.fullmatch(n) for n in trio.run(mcp_check, bob, app)), "not in MCP check"
    bob.leasefs("release", str(bob.repo / app))
    with open(alice.repo / app, "a") as f:
        f.write("alice again\n")
    assert (alice.repo / app).read_text() == "print('v1')\nalice on main\nalice again\n"
    alice.leasefs("release", str(alice.repo / app))

    run("git", "switch", "-q", "main", cwd=bob.repo)
    wait_for(lambda: status(bob)["branch"] == "main", what="bob's mount following git switch")
    (alice.repo / "src" / "fresh.py").write_text("print('new on main')\n")
    alice.leasefs("release", str(alice.repo / "src" / "fresh.py"))
    wait_for(lambda: (bob.repo / "src" / "fresh.py").exists(), what="main's version in bob's tree")
    assert (bob.repo / "src" / "fresh.py").read_text() == "print('new on main')\n"
    assert (bob.repo / app).read_text() == "print('v1')\nbob on feature\n"  # git's, untouched


def test_a_branch_switch_is_gits_not_an_edit(
    mount_agent: MountFactory, origin: Path, tmp_path: Path
) -> None:
    """`git switch` rewrites files through the mount; none of it becomes a version, on either
    branch, and the other mount on main keeps its files. An edit after it is a version."""
    seed = tmp_path / "bob"
    run("git", "clone", "-q", origin, seed)
    run("git", "switch", "-q", "-c", "feature", cwd=seed)
    (seed / "README.md").write_text("# feature readme\n")
    (seed / "src" / "feature.py").write_text("print('feature')\n")
    run("git", "add", ".", cwd=seed)
    run("git", "-c", "user.email=b@x", "-c", "user.name=b", "commit", "-q", "-m", "feature",
        cwd=seed)  # fmt: skip
    run("git", "switch", "-q", "main", cwd=seed)
    alice = mount_agent("alice")
    bob = mount_agent("bob")
    assert status(bob)["branch"] == "main"

    run("git", "switch", "-q", "feature", cwd=bob.repo)  # through bob's mount
    wait_for(lambda: status(bob)["branch"] == "feature", what="bob's mount following the switch")
    wait_for(lambda: not status(bob)["held"], what="the checkout's leases going back")
    record = bob.record()
    assert record is not None

    async def versions() -> dict[tuple[str, str], Version | None]:
        async with Client(record.coordinator, record.token) as client:
            return {(path, branch): await client.latest_version(path, branch=branch)
                    for path in ("README.md", "src/feature.py")
                    for branch in ("main", "feature")}  # fmt: skip

    assert set(trio.run(versions).values()) == {None}
    assert (alice.repo / "README.md").read_text() == "# project\n"
    assert not (alice.repo / "src" / "feature.py").exists()
    assert run("git", "status", "--porcelain", cwd=bob.repo).stdout == ""

    with open(bob.repo / "README.md", "a") as f:
        f.write("bob's edit on feature\n")
    bob.leasefs("release", str(bob.repo / "README.md"))
    found = trio.run(versions)
    assert found[("README.md", "main")] is None
    edit = found[("README.md", "feature")]
    assert edit is not None and edit.author.name == "bob"


def test_a_stale_git_lock_holds_releases_back_once_and_says_so(mount_agent: MountFactory) -> None:
    alice = mount_agent("alice")
    (alice.repo / ".git" / "index.lock").write_text("")  # a git killed midway leaves this
    record = alice.record()
    assert record is not None

    async def latest() -> Version | None:
        async with Client(record.coordinator, record.token) as client:
            return await client.latest_version("src/app.py")

    for n in (1, 2):
        (alice.repo / "src" / "app.py").write_text(f"print({n})\n")
        alice.leasefs("release", str(alice.repo / "src" / "app.py"))
        version = trio.run(latest)
        assert version is not None and version.size == len(f"print({n})\n")
    assert alice.output().count("index.lock stayed") == 1, alice.output()


def test_branch_scoped_leases_let_two_branches_edit_one_file_at_once(
    mount_agent: MountFactory, origin: Path, tmp_path: Path
) -> None:
    """``lease_scope = "branch"`` (from leasefs.toml, or the flag): alice on main and bob on
    feature each edit api.txt at once; carol, on main with the default scope, is refused
    while either holds it; the versions stay on their branch."""
    seed = tmp_path / "bob"
    run("git", "clone", "-q", origin, seed)
    run("git", "switch", "-q", "-c", "feature", cwd=seed)
    (seed / "leasefs.toml").write_text('lease_scope = "branch"\n')
    alice = mount_agent("alice", "--lease-scope", "branch", "--idle-grace", "60")
    bob = mount_agent("bob", "--wait", "0", "--idle-grace", "60")
    carol = mount_agent("carol", "--wait", "0")
    assert [status(m)["lease_scope"] for m in (alice, bob, carol)] == [
        "branch", "branch", "workspace"
    ]  # fmt: skip
    assert "leases exclude this branch only" in bob.leasefs("status", str(bob.repo)).stdout

    app = "src/app.py"
    with open(alice.repo / app, "a") as f:
        f.write("alice on main\n")
    with open(bob.repo / app, "a") as f:  # feature's own lease: no EBUSY
        f.write("bob on feature\n")
    held = {m.agent: [h["path"] for h in status(m)["held"]] for m in (alice, bob)}  # type: ignore[attr-defined]
    assert held == {"alice": [app], "bob": [app]}
    with pytest.raises(OSError) as refused:
        (carol.repo / app).write_text("carol, workspace-wide\n")
    assert refused.value.errno == errno.EBUSY
    alice.leasefs("release", str(alice.repo / app))
    bob.leasefs("release", str(bob.repo / app))
    wait_for(lambda: (carol.repo / app).read_text() == "print('v1')\nalice on main\n",
             what="main's version in carol's tree")  # fmt: skip
    assert (bob.repo / app).read_text() == "print('v1')\nbob on feature\n"
    assert (alice.repo / app).read_text() == "print('v1')\nalice on main\n"
