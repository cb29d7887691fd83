"""Several agents in one mounted tree (`leasefs run`): each process is taken as the agent of the
`leasefs run` it descends from, with leases of its own, exactly as separate mounts would be;
processes of no run are the mount's own agent."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import trio
import xattr
from mcp import Client as McpClient
from mcp import StdioServerParameters

from leasefs import Client
from leasefs.wire import Version
from tests.helpers import AgentMount, wait_for
from tests.mount.conftest import MountFactory

RUN_TIMEOUT_S = 120.0


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def run_as(
    tree: AgentMount, agent: str, command: list[str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``leasefs run --agent AGENT -- COMMAND`` in the tree, to its end."""
    result = tree.leasefs("run", "--agent", agent, "--", *command, cwd=tree.repo, check=False,
                          timeout=RUN_TIMEOUT_S)  # fmt: skip
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture
def tree(mount_agent: MountFactory) -> AgentMount:
    return mount_agent("alice", "--wait", "0")


@pytest.fixture
def background(tree: AgentMount) -> Iterator[list[subprocess.Popen[str]]]:
    """`leasefs run`s left running in the background; stopped by PID at the end."""
    started: list[subprocess.Popen[str]] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)


def latest(tree: AgentMount, path: str) -> Version | None:
    record = tree.record()
    assert record is not None

    async def ask() -> Version | None:
        async with Client(record.coordinator, record.token) as client:
            return await client.latest_version(path)

    return trio.run(ask)


def holder_of(path: Path) -> str | None:
    try:
        return str(json.loads(xattr.getxattr(str(path), "user.leasefs.holder"))["agent"])
    except OSError:
        return None


def hold_open(
    tree: AgentMount,
    agent: str,
    path: Path,
    line: str,
    until: Path,
    background: list[subprocess.Popen[str]],
    tool: str = "",
) -> subprocess.Popen[str]:
    """`leasefs run` of ``agent`` appending ``line`` to ``path`` and keeping the file open for
    writing (so the lease stays its own) until ``until`` exists."""
    holder = python(f"""
        import os, time
        with open({str(path)!r}, "a") as f:
            f.write({line!r})
            f.flush()
            while not os.path.exists({str(until)!r}):
                time.sleep(0.05)
    """)
    tools = ["--tool", tool] if tool else []
    command = [sys.executable, "-m", "leasefs", "run", "--agent", agent, *tools, "--", *holder]
    proc = subprocess.Popen(command, cwd=tree.repo, env=tree.env, text=True)
    background.append(proc)
    return proc


def test_agents_in_one_tree_hold_files_exclusively_and_record_versions_as_themselves(
    tree: AgentMount, background: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    app = tree.repo / "src" / "app.py"
    go_on = tmp_path / "bob-may-finish"
    bob = hold_open(tree, "bob", app, "print('bob')\n", go_on, background, "claude-code")
    wait_for(lambda: holder_of(app) == "bob", what="bob's lease on src/app.py")

    # The mount's own agent (this test) and a third agent are refused, and change nothing.
    with pytest.raises(OSError) as refused:
        app.write_text("print('alice')\n")
    assert refused.value.errno == 16  # EBUSY
    carol = run_as(tree, "carol", ["sed", "-i", "s/bob/carol/", "src/app.py"], check=False)
    assert carol.returncode != 0
    assert app.read_text() == "print('v1')\nprint('bob')\n"
    # vim, as a fourth agent, saves another file meanwhile (swap, backup and rename included).
    vim = ["vim", "-u", "NONE", "-i", "NONE", "-es", "-c", "%s/project/erin's project/",
           "-c", "wq"]  # fmt: skip
    run_as(tree, "erin", [*vim, "README.md"])
    assert (tree.repo / "README.md").read_text() == "# erin's project\n"
    assert run_as(tree, "erin", [*vim, "src/app.py"], check=False).returncode != 0
    assert app.read_text() == "print('v1')\nprint('bob')\n"
    wait_for(lambda: (v := latest(tree, "README.md")) is not None and v.author.name == "erin",
             what="erin's version")  # fmt: skip

    status = json.loads(tree.leasefs("status", "--json", str(tree.repo)).stdout)[0]
    [held] = [h for h in status["held"] if h["path"] == "src/app.py"]
    assert held["agent"] == "bob" and held["open_for_writing"]
    assert {r["agent"]: r["tool"] for r in status["run_agents"]} == {
        "bob": "claude-code", "carol": "sed", "erin": "vim"
    }  # fmt: skip
    shown = tree.leasefs("status", str(tree.repo)).stdout
    assert "src/app.py" in shown and "by bob" in shown, shown
    who = tree.leasefs("who", str(app)).stdout
    assert re.search(rf"in this tree: bob \(leasefs run process {bob.pid} and all it started\), "
                     "open for writing", who), who  # fmt: skip

    go_on.touch()
    assert bob.wait(RUN_TIMEOUT_S) == 0
    # bob's run ended: his lease went back at once, with his content as his version.
    version = latest(tree, "src/app.py")
    assert version is not None and version.author.name == "bob"
    run_as(tree, "carol", ["sed", "-i", "s/bob/carol/", "src/app.py"])
    assert app.read_text() == "print('v1')\nprint('carol')\n"
    wait_for(lambda: (v := latest(tree, "src/app.py")) is not None and v.author.name == "carol",
             what="carol's version")  # fmt: skip


def test_a_runs_processes_stay_its_own_through_setsid_double_forks_and_a_cleared_environment(
    tree: AgentMount,
) -> None:
    # The grandchild leaves the session, outlives the run's command, and writes afterwards.
    orphan = python("""
        import subprocess, sys
        subprocess.Popen(["setsid", sys.executable, "-c",
                          "import time; time.sleep(1); open('src/dave.txt', 'w').write('dave\\\\n')"])
    """)
    run_as(tree, "dave", orphan)
    run_as(tree, "erin", ["env", "-i", sys.executable, "-c",
                          "open('src/erin.txt', 'w').write('erin\\n')"])  # fmt: skip
    (tree.repo / "src" / "own.txt").write_text("alice\n")

    def recorded_as(path: str, author: str) -> bool:
        version = latest(tree, path)
        return version is not None and version.author.name == author

    for path, author in (("src/dave.txt", "dave"), ("src/erin.txt", "erin"),
                         ("src/own.txt", "alice")):  # fmt: skip
        wait_for(partial(recorded_as, path, author), what=f"{path} recorded as {author}'s")


def test_three_agents_appending_to_one_file_lose_no_line(mount_agent: MountFactory) -> None:
    """Each agent appends its lines with pauses of random length; every append waits for the
    lease (--wait) while another agent holds the file, and none is lost or doubled."""
    tree = mount_agent("alice", "--wait", "30")
    appender = """
        import os, random, sys, time
        name = sys.argv[1]
        for i in range(15):
            with open("shared.log", "a") as f:
                f.write(f"{name} {i}\\n")
            time.sleep(random.uniform(0, 0.05))
    """
    procs = []
    for name in ("bob", "carol", "dave"):
        command = [sys.executable, "-m", "leasefs", "run", "--agent", name, "--",
                   *python(appender), name]  # fmt: skip
        procs.append(subprocess.Popen(command, cwd=tree.repo, env=tree.env, text=True,
                                      stderr=subprocess.PIPE))  # fmt: skip
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=RUN_TIMEOUT_S)
            assert proc.returncode == 0, err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
    lines = (tree.repo / "shared.log").read_text().splitlines()
    expected = {f"{name} {i}" for name in ("bob", "carol", "dave") for i in range(15)}
    assert sorted(lines) == sorted(expected)
    for name in ("bob", "carol", "dave"):  # each agent's lines in its own order
        own = [line for line in lines if line.startswith(name + " ")]
        assert own == [f"{name} {i}" for i in range(15)]


def test_a_run_outside_a_mount_says_so(tmp_path: Path, tree: AgentMount) -> None:
    result = tree.leasefs("run", "--agent", "bob", "--", "true", cwd=tmp_path, check=False)
    assert result.returncode == 1 and "not inside a leasefs mount" in result.stderr
    missing = run_as(tree, "bob", ["no-such-command-xyz"], check=False)
    assert missing.returncode == 127 and "cannot start no-such-command-xyz" in missing.stderr
    refused = run_as(tree, "alice", ["true"], check=False)
    assert refused.returncode == 1 and "this mount's own agent" in refused.stderr


async def test_an_mcp_session_under_a_run_acts_as_its_agent(tree: AgentMount) -> None:
    """`leasefs mcp` started by an agent CLI under `leasefs run` is that agent: its briefing
    says so, and the leases it takes are the run agent's, not the mount's."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "leasefs", "run", "--agent", "bob", "--tool", "claude-code", "--",
              sys.executable, "-m", "leasefs", "mcp"],
        env=tree.env, cwd=tree.repo,
    )  # fmt: skip
    async with McpClient(params, read_timeout_seconds=60) as bob:
        briefing = await bob.call_tool("leasefs_briefing", {})
        assert not briefing.is_error, briefing.content
        assert briefing.structured_content is not None
        assert briefing.structured_content["you"]["name"] == "bob"
        taken = await bob.call_tool("leasefs_lease_acquire", {"paths": ["src/mcp.txt"]})
        assert not taken.is_error, taken.content
    status = json.loads(tree.leasefs("status", "--json", str(tree.repo)).stdout)[0]
    assert [r["agent"] for r in status["run_agents"]] == ["bob"]


def git(tree: AgentMount, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=tree.repo, capture_output=True, text=True,
                          check=True, timeout=60).stdout  # fmt: skip


def test_leasefs_commit_commits_only_the_agents_own_files(tree: AgentMount) -> None:
    run_as(tree, "bob", python("open('src/app.py', 'a').write('# bob\\n')"))
    run_as(tree, "carol", ["sed", "-i", "s/project/carol's project/", "README.md"])
    (tree.repo / "notes.txt").write_text("alice's notes\n")  # the mount's own agent
    wait_for(lambda: (v := latest(tree, "README.md")) is not None and v.author.name == "carol",
             what="carol's version")  # fmt: skip
    done = run_as(tree, "bob", [sys.executable, "-m", "leasefs", "commit", "-m", "bob's part"])
    assert "committed 1 file(s) of bob" in done.stdout, done.stdout
    assert "left out README.md: last changed by carol" in done.stdout, done.stdout
    assert git(tree, "show", "--name-only", "--format=%s", "HEAD").split() == [
        "bob's", "part", "src/app.py"
    ]  # fmt: skip
    left = git(tree, "status", "--porcelain").splitlines()
    assert sorted(left) == [" M README.md", "?? notes.txt"], left
    assert (tree.repo / "README.md").read_text() == "# carol's project\n"
    assert (tree.repo / "notes.txt").read_text() == "alice's notes\n"
    again = run_as(tree, "bob", [sys.executable, "-m", "leasefs", "commit", "-m", "more"])
    assert "nothing of bob's to commit" in again.stdout


def test_destructive_git_commands_leave_files_another_agent_holds_untouched(
    tree: AgentMount, background: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    app = tree.repo / "src" / "app.py"
    go_on = tmp_path / "done"
    bob = hold_open(tree, "bob", app, "# bob's work\n", go_on, background)
    wait_for(lambda: holder_of(app) == "bob", what="bob's lease on src/app.py")
    for command in (["git", "reset", "--hard"], ["git", "checkout", "--", "."],
                    ["git", "stash"]):  # fmt: skip
        result = run_as(tree, "carol", command, check=False)
        assert app.read_text() == "print('v1')\n# bob's work\n", (command, result.stderr)
        assert result.returncode != 0 and "busy" in result.stderr.lower(), (command, result)
    go_on.touch()
    assert bob.wait(RUN_TIMEOUT_S) == 0
