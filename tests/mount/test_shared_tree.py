"""Several agents in one mounted tree (`leasefs run`): each process is taken as the agent of the
`leasefs run` it descends from, with leases of its own, exactly as separate mounts would be;
processes of no run are the mount's own agent."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import trio
import xattr

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


def test_agents_in_one_tree_hold_files_exclusively_and_record_versions_as_themselves(
    tree: AgentMount, background: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    app = tree.repo / "src" / "app.py"
    go_on = tmp_path / "bob-may-finish"
    # bob keeps src/app.py open for writing until told to finish: his lease stays his.
    holder = python(f"""
        import os, time
        with open("src/app.py", "a") as f:
            f.write("print('bob')\\n")
            f.flush()
            while not os.path.exists({str(go_on)!r}):
                time.sleep(0.05)
    """)
    bob = subprocess.Popen(
        [sys.executable, "-m", "leasefs", "run", "--agent", "bob", "--tool", "claude-code",
         "--", *holder],
        cwd=tree.repo, env=tree.env, text=True,
    )  # fmt: skip
    background.append(bob)
    wait_for(lambda: holder_of(app) == "bob", what="bob's lease on src/app.py")

    # The mount's own agent (this test) and a third agent are refused, and change nothing.
    with pytest.raises(OSError) as refused:
        app.write_text("print('alice')\n")
    assert refused.value.errno == 16  # EBUSY
    carol = run_as(tree, "carol", ["sed", "-i", "s/bob/carol/", "src/app.py"], check=False)
    assert carol.returncode != 0
    assert app.read_text() == "print('v1')\nprint('bob')\n"

    status = json.loads(tree.leasefs("status", "--json", str(tree.repo)).stdout)[0]
    [held] = [h for h in status["held"] if h["path"] == "src/app.py"]
    assert held["agent"] == "bob" and held["open_for_writing"]
    assert {r["agent"]: r["tool"] for r in status["run_agents"]} == {
        "bob": "claude-code", "carol": "sed"
    }  # fmt: skip
    shown = tree.leasefs("status", str(tree.repo)).stdout
    assert "src/app.py" in shown and "by bob" in shown, shown

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
