"""Which agent a process acts for: by the marker it inherited, else by ancestry, with the
start time guarding against reused pids (a fake /proc: pid -> parent, start, marker)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from leasefs._mount._process_agents import (
    ProcessAgents,
    read_environ_marker,
    read_parent_and_start,
)

# pid: (parent, start time, marker in its environment)
Table = dict[int, tuple[int, int, str | None]]


class FakeProc:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.now = 0.0

    def agents(self) -> ProcessAgents:
        return ProcessAgents(
            environ_marker=lambda pid: self.table[pid][2] if pid in self.table else None,
            parent_and_start=lambda pid: self.table[pid][:2] if pid in self.table else None,
            clock=lambda: self.now,
        )


def test_no_run_means_the_mounts_own_agent_without_looking() -> None:
    looked: list[int] = []
    agents = ProcessAgents(environ_marker=lambda pid: looked.append(pid) or None)
    assert agents.agent_of(1234) is None and looked == []


def test_the_marker_names_the_agent_whatever_the_ancestry() -> None:
    # 30 was started under run "m1", then its parent died: it now hangs off init (setsid, a
    # double fork); 40 descends from the run's root, 50 from nothing of ours.
    proc = FakeProc({10: (1, 100, "m1"), 30: (1, 300, "m1"), 40: (10, 400, None),
                     50: (1, 500, None), 60: (1, 600, "forged")})  # fmt: skip
    agents = proc.agents()
    agents.add("bob", "m1", root_pid=10)
    assert agents.agent_of(30) == "bob"  # outlived its parent: the marker still says
    assert agents.agent_of(40) == "bob"  # cleared its environment: its ancestry says
    assert agents.agent_of(50) is None
    assert agents.agent_of(60) is None  # an unknown marker is nobody's


def test_a_reused_pid_is_not_the_runs_root() -> None:
    proc = FakeProc({10: (1, 100, None), 40: (10, 400, None)})
    agents = proc.agents()
    agents.add("bob", "m1", root_pid=10)
    assert agents.agent_of(40) == "bob"
    proc.table[10] = (1, 999, None)  # the run ended; pid 10 now belongs to someone else
    proc.now += 5  # past the remembered verdict
    assert agents.agent_of(40) is None


def test_verdicts_are_remembered_for_a_second_and_reset_by_a_new_run() -> None:
    proc = FakeProc({20: (1, 200, None)})
    agents = proc.agents()
    agents.add("bob", "m1", root_pid=20)
    proc.table[21] = (1, 210, None)
    assert agents.agent_of(21) is None
    proc.table[21] = (1, 210, "m1")
    assert agents.agent_of(21) is None  # remembered
    proc.now += 1.5
    assert agents.agent_of(21) == "bob"
    proc.table[22] = (1, 220, "m2")
    assert agents.agent_of(22) is None
    agents.add("carol", "m2", root_pid=22)  # judged before it was a run's: judged again
    assert agents.agent_of(22) == "carol"


def test_a_run_needs_a_running_root() -> None:
    with pytest.raises(ProcessLookupError):
        FakeProc({}).agents().add("bob", "m1", root_pid=77)


def test_the_real_proc_readers_see_a_child_as_it_is() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        env={**os.environ, "LEASEFS_RUN": "marker-xyz"},
    )
    try:
        deadline = time.monotonic() + 10
        while read_environ_marker(child.pid) != "marker-xyz" and time.monotonic() < deadline:
            time.sleep(0.01)  # the environment is the exec'ed one once Python runs
        assert read_environ_marker(child.pid) == "marker-xyz"
        found = read_parent_and_start(child.pid)
        assert found is not None and found[0] == os.getpid() and found[1] > 0
        assert read_environ_marker(os.getpid()) != "marker-xyz"
    finally:
        child.kill()
        child.wait(10)
    assert read_parent_and_start(2**22 + 7) is None
