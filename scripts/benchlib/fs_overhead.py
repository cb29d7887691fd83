"""Figure 1: what the mount costs on everyday operations, against native and bindfs.

Three views of one generated repository: the native tree, an identical copy mounted in place
by `leasefs mount`, and bindfs (a mature FUSE passthrough written in C) over the native tree.
Each operation runs on the three in turn (native, leasefs, bindfs, native, …) so that drift
on the machine spreads evenly; the median of each is reported with its ratio to native.

After each run of an operation that wrote through the mount, the mount's leases are released
at once and its snapshots awaited (untimed, reported as "drain"), so the next measurement does
not compete with them.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .modes import Mode
from .mounts import BindfsMount, Drain, LeasefsMount, ensure_bindfs, stop_mounts
from .procs import CommandFailed, time_command
from .progress import say
from .report import Section, Table
from .stats import fmt_ratio, fmt_seconds, median, ratio
from .tree import GIT_ENV, IGNORED_DIR, NEEDLE, OUTPUT_DIR, PACKAGE_DIR, copy_repository
from .tree import make_repository as make_tree_repository

NATIVE, LEASEFS, BINDFS = "native", "leasefs", "bindfs"
COMMAND_TIMEOUT_S = 900.0

_SMALL_FILES = """\
import os, sys
folder, count = sys.argv[1], int(sys.argv[2])
os.mkdir(folder)
data = b"x" * 1024
for i in range(count):
    with open(os.path.join(folder, f"f{i:05d}.txt"), "wb") as f:
        f.write(data)
"""


@dataclass(frozen=True)
class Target:
    """One view of the tree; ``mount`` is set for the leasefs view (it has leases to drain)."""

    name: str
    path: Path
    mount: LeasefsMount | None = None


@dataclass(frozen=True)
class Step:
    """One timed command; ``argv`` gets the target and the run's index (for fresh names)."""

    name: str
    argv: Callable[[Target, int], list[str]]
    ok_returncodes: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class Operation:
    """Steps run back to back on one target (a write, then reading it back)."""

    steps: tuple[Step, ...]
    drain: bool = False  # it wrote through the mount: release and await snapshots after


@dataclass
class Samples:
    """Seconds per step and target, errors in place of samples, drains per operation."""

    times: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    errors: dict[str, dict[str, str]] = field(default_factory=dict)
    drains: dict[str, list[Drain]] = field(default_factory=dict)

    def add(self, step: str, target: str, seconds: float) -> None:
        self.times.setdefault(step, {}).setdefault(target, []).append(seconds)

    def fail(self, step: str, target: str, reason: str) -> None:
        self.errors.setdefault(step, {})[target] = reason


def _environment() -> dict[str, str]:
    """One environment for every command on every target: git's identity fixed, and
    PYTHONDONTWRITEBYTECODE unset so that compileall really writes its files."""
    env = {**os.environ, **GIT_ENV}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _fixed(*argv: str) -> Callable[[Target, int], list[str]]:
    """A command that is the same on every target and run."""
    return lambda target, run_index: list(argv)


def _one(
    name: str,
    argv: Callable[[Target, int], list[str]],
    *,
    ok_returncodes: tuple[int, ...] = (0,),
    drain: bool = False,
) -> Operation:
    """An operation of a single step."""
    return Operation((Step(name, argv, ok_returncodes),), drain=drain)


def operations(mode: Mode) -> list[Operation]:
    """The operations of figure 1, in the order they run: reads first, on equal trees."""
    python = sys.executable
    mib, small = mode.big_file_mib, mode.small_files

    def big_file(target: Target) -> str:
        return f"{OUTPUT_DIR}/big-{target.name}.bin"

    def write_big(target: Target, run_index: int) -> list[str]:
        return ["dd", "if=/dev/zero", f"of={big_file(target)}", "bs=1M", f"count={mib}",
                "conv=fsync", "status=none"]  # fmt: skip

    def read_big(target: Target, run_index: int) -> list[str]:
        return ["dd", f"if={big_file(target)}", "of=/dev/null", "bs=1M", "status=none"]

    def small_files(folder: str) -> Callable[[Target, int], list[str]]:
        return lambda target, run_index: [
            python, "-I", "-S", "-c", _SMALL_FILES, f"{folder}/{target.name}-r{run_index}",
            str(small),
        ]  # fmt: skip

    compileall = _fixed(python, "-m", "compileall", "-q", "-f", PACKAGE_DIR)
    ripgrep = []
    if shutil.which("rg"):  # ripgrep, what agents search with, when it is installed
        ripgrep = [_one(f"rg {NEEDLE}", _fixed("rg", "-uu", NEEDLE, "."), ok_returncodes=(0, 1))]
    return [
        _one("git status (warm)", _fixed("git", "status")),
        _one("find . -type f | wc -l", _fixed("sh", "-c", "find . -type f | wc -l")),
        _one(f"grep -r {NEEDLE} .", _fixed("grep", "-r", NEEDLE, "."), ok_returncodes=(0, 1)),
        *ripgrep,
        _one(
            "read every file (find -exec cat)",
            _fixed("sh", "-c", "find . -type f -exec cat {} + >/dev/null"),
        ),
        _one(
            f"python -m compileall -q -f ({mode.modules} modules, git-ignored output)", compileall
        ),
        Operation(
            (
                Step(f"write {mib} MiB (dd bs=1M conv=fsync), leased", write_big),
                Step(f"read the {mib} MiB back (dd bs=1M)", read_big),
            ),
            drain=True,
        ),
        _one(
            f"create+write {small} files of 1 KiB, leased folder",
            small_files(OUTPUT_DIR),
            drain=True,
        ),
        _one(
            f"create+write {small} files of 1 KiB, git-ignored folder",
            small_files(IGNORED_DIR),
            drain=True,
        ),
    ]


class Views:
    """The native tree plus the mounts over it and over its copy, brought up and down."""

    def __init__(self, work: Path, url: str, bindfs: str | None) -> None:
        self.work = work
        self.url = url
        self.bindfs = bindfs
        self.native = work / "native"
        self.copy = work / "mounted"
        self.peer = work / "bindfs"
        self.leasefs: LeasefsMount | None = None
        self.bindfs_mount: BindfsMount | None = None
        self._generation = 0

    def up(self) -> None:
        self._generation += 1
        self.leasefs = LeasefsMount(
            self.copy,
            url=self.url,
            workspace="bench",
            agent="bench",
            log_path=self.work / f"mount-{self._generation}.log",
        ).start()
        if self.bindfs is not None:
            log = self.work / f"bindfs-{self._generation}.log"
            self.bindfs_mount = BindfsMount(self.bindfs, self.native, self.peer, log).start()
        self.leasefs.wait_ready()

    def down(self) -> None:
        try:
            if self.leasefs is not None:
                stop_mounts([self.leasefs])
        finally:
            self.leasefs = None
            if self.bindfs_mount is not None:
                self.bindfs_mount.stop()
                self.bindfs_mount = None

    def targets(self) -> list[Target]:
        found = [Target(NATIVE, self.native), Target(LEASEFS, self.copy, self.leasefs)]
        if self.bindfs_mount is not None:
            found.append(Target(BINDFS, self.peer))
        return found


def _measure(step: Step, target: Target, run_index: int, samples: Samples, label: str) -> bool:
    """Time one step on one target; a failure is recorded in place of the sample."""
    try:
        seconds = time_command(
            step.argv(target, run_index),
            cwd=target.path,
            env=_environment(),
            timeout=COMMAND_TIMEOUT_S,
            ok_returncodes=step.ok_returncodes,
        )
    except CommandFailed as exc:
        say(f"fig 1: {step.name} {label} {target.name}: FAILED {exc}")
        samples.fail(step.name, target.name, str(exc))
        return False
    say(f"fig 1: {step.name} {label} {target.name}: {fmt_seconds(seconds)}")
    samples.add(step.name, target.name, seconds)
    return True


def _measure_cold(views: Views, rounds: int, samples: Samples) -> None:
    """The first git status after mounting (page cache as it is: we may not drop caches)."""
    step = Step("git status (cold: first after mounting)", lambda t, i: ["git", "status"])
    for round_index in range(rounds):
        if round_index:
            views.down()
            views.up()
        for target in views.targets():
            _measure(step, target, round_index, samples, f"round {round_index + 1}/{rounds}")


def _measure_operation(op: Operation, views: Views, runs: int, samples: Samples) -> None:
    for run_index in range(runs):
        for target in views.targets():
            label = f"run {run_index + 1}/{runs}"
            for step in op.steps:
                if not _measure(step, target, run_index, samples, label):
                    break
            if op.drain and target.mount is not None:
                drain = target.mount.settle()
                samples.drains.setdefault(op.steps[0].name, []).append(drain)
                say(f"fig 1:   drained {drain.released} lease(s) in {fmt_seconds(drain.seconds)}")


def run(mode: Mode, work: Path, url: str) -> Section:
    """Figure 1 against the coordinator at ``url``."""
    section = Section("1. Filesystem overhead: leasefs and bindfs against native")
    work.mkdir(parents=True)
    bindfs = ensure_bindfs()
    say(f"fig 1: generating a repository of {mode.tree_files} files")
    shape = make_tree_repository(work / "native", mode.tree_files, mode.modules)
    copy_repository(work / "native", work / "mounted")
    views = Views(work, url, bindfs)
    samples = Samples()
    operation_list = operations(mode)
    try:
        views.up()
        _measure_cold(views, mode.cold_rounds, samples)
        for op in operation_list:
            _measure_operation(op, views, mode.runs, samples)
    except Exception as exc:  # a figure that breaks still reports what it measured
        section.error = f"{type(exc).__name__}: {exc}"
        say(f"fig 1: stopped early: {section.error}")
    finally:
        views.down()
    section.tables.append(_table(mode, samples, bindfs is not None, shape.bytes))
    section.data = _data(samples, shape.bytes, mode)
    return section


def _cell(samples: Samples, step: str, target: str) -> tuple[str, float | None]:
    value = median(samples.times.get(step, {}).get(target, []))
    error = samples.errors.get(step, {}).get(target)
    if error is not None:
        return f"failed: {error}", None
    return fmt_seconds(value), value


def _table(mode: Mode, samples: Samples, have_bindfs: bool, tree_bytes: int) -> Table:
    table = Table(
        f"Median wall-clock time on {mode.tree_files:,} files ({tree_bytes / 1e6:.0f} MB)",
        [NATIVE, LEASEFS, BINDFS, "leasefs / native", "bindfs / native", "leasefs drain"],
    )
    table.columns.insert(0, "operation")
    step_names = list(samples.times) + [s for s in samples.errors if s not in samples.times]
    for step in step_names:
        native_text, native = _cell(samples, step, NATIVE)
        mounted_text, mounted = _cell(samples, step, LEASEFS)
        peer_text, peer = _cell(samples, step, BINDFS) if have_bindfs else ("skipped", None)
        drains = samples.drains.get(step, [])
        drain_text = (
            f"{fmt_seconds(median([d.seconds for d in drains]))} "
            f"({max(d.released for d in drains)} leases)"
            if drains
            else ""
        )
        table.add(
            step,
            native_text,
            mounted_text,
            peer_text,
            fmt_ratio(ratio(mounted, native)),
            fmt_ratio(ratio(peer, native)),
            drain_text,
        )
    runs = "one round" if mode.cold_rounds == 1 else f"{mode.cold_rounds} rounds (mounted anew)"
    table.notes += [
        f"Median of {mode.runs} runs per target, alternating native, leasefs, bindfs; "
        f"cold git status: {runs}.",
        "leasefs: `leasefs mount` of an identical copy (default idle grace 3 s, no wait); "
        "bindfs: `bindfs -f` of the native tree (its defaults).",
        "leasefs drain: after each run, untimed above: releasing the leases the run took, "
        "with their snapshots (hash, upload, version), until the mount is idle.",
        "The large file is read right after it is written: from the page cache where the "
        "filesystem keeps it (caches are not dropped).",
    ]
    if not have_bindfs:
        table.notes.append("bindfs could not be installed: its column is skipped.")
    return table


def _data(samples: Samples, tree_bytes: int, mode: Mode) -> dict[str, Any]:
    return {
        "tree_files": mode.tree_files,
        "tree_bytes": tree_bytes,
        "samples_s": samples.times,
        "errors": samples.errors,
        "drains": {k: [asdict(d) for d in v] for k, v in samples.drains.items()},
    }
