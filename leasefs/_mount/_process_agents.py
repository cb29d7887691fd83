"""Which agent of a shared tree a process acts for: the `leasefs run` it descends from.

Several agents in one mounted tree (two Claude Code sessions in one folder) are told apart by
process. `leasefs run --agent NAME -- CMD` registers with the mount and starts CMD with a
marker in its environment (``LEASEFS_RUN=<marker>``); every process descended from it
inherits the marker, through double forks and ``setsid``, and keeps it when its parent exits
first. A process that cleared its environment is still found by ancestry: its chain of
parents reaches the `leasefs run` process (named by pid and start time, so a reused pid
never counts). Processes of no `leasefs run` are the mount's own agent (None here).

A verdict is kept for a second per pid: a mount asks for every change, and a process does not
change which agent it is (a pid reused within that second is the one thing not seen).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .._config import RUN_MARKER_ENV

__all__ = ["ProcessAgents", "read_environ_marker", "read_parent_and_start"]

_REMEMBER_S = 1.0
_REMEMBERED = 4096
_MAX_ANCESTORS = 64


def read_environ_marker(pid: int) -> str | None:
    """The ``LEASEFS_RUN`` value of `pid`'s environment (as it was at exec), if readable."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read()
    except OSError:
        return None  # gone, or another user's
    prefix = RUN_MARKER_ENV.encode() + b"="
    for entry in environ.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix) :].decode("ascii", "replace")
    return None


def read_parent_and_start(pid: int) -> tuple[int, int] | None:
    """`pid`'s parent and its start time (clock ticks since boot), from ``/proc/PID/stat``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold anything, spaces included.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[1]), int(fields[19])  # fields 4 (ppid) and 22 (starttime)
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class RunAgent:
    """One `leasefs run` of this mount: the agent it acts as, its marker, its process."""

    agent: str
    marker: str
    root_pid: int
    root_start: int


class ProcessAgents:
    """The `leasefs run` agents of one mount, and which of them a process acts for."""

    def __init__(
        self,
        *,
        environ_marker: Callable[[int], str | None] = read_environ_marker,
        parent_and_start: Callable[[int], tuple[int, int] | None] = read_parent_and_start,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._environ_marker = environ_marker
        self._parent_and_start = parent_and_start
        self._clock = clock
        self._by_marker: dict[str, RunAgent] = {}
        self._by_root: dict[tuple[int, int], RunAgent] = {}
        self._verdicts: dict[int, tuple[float, str | None]] = {}

    def runs(self) -> list[RunAgent]:
        return list(self._by_marker.values())

    def add(self, agent: str, marker: str, root_pid: int) -> RunAgent:
        """Processes carrying ``marker``, or descended from ``root_pid``, act as ``agent``.
        Raises ProcessLookupError if ``root_pid`` is not running."""
        found = self._parent_and_start(root_pid)
        if found is None:
            raise ProcessLookupError(f"no process {root_pid}")
        run = RunAgent(agent=agent, marker=marker, root_pid=root_pid, root_start=found[1])
        self._by_marker[marker] = run
        self._by_root[(root_pid, found[1])] = run
        self._verdicts.clear()  # a process judged before may be this run's
        return run

    def acts_for(self, agent: str | None) -> Callable[[int], bool]:
        """Whether a process acts for ``agent`` (None: the mount's own agent)."""

        def counts(pid: int) -> bool:
            return self.agent_of(pid) == agent

        return counts

    def agent_of(self, pid: int) -> str | None:
        """The agent process `pid` acts for: a `leasefs run` agent's name, or None (the
        mount's own agent)."""
        if not self._by_marker:
            return None
        now = self._clock()
        kept = self._verdicts.get(pid)
        if kept is not None and now - kept[0] < _REMEMBER_S:
            return kept[1]
        verdict = self._judge(pid)
        if len(self._verdicts) > _REMEMBERED:
            self._verdicts.clear()
        self._verdicts[pid] = (now, verdict)
        return verdict

    def _judge(self, pid: int) -> str | None:
        marker = self._environ_marker(pid)
        if marker is not None and (run := self._by_marker.get(marker)) is not None:
            return run.agent
        current = pid
        for _ in range(_MAX_ANCESTORS):
            found = self._parent_and_start(current)
            if found is None:
                return None
            parent, start = found
            if (run := self._by_root.get((current, start))) is not None:
                return run.agent
            if parent <= 1:
                return None
            current = parent
        return None
