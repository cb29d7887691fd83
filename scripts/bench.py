#!/usr/bin/env python3
"""Benchmarks for leasefs: every figure next to its reference, measured in the same run.

    scripts/bench --quick      # under a minute: small tree, few runs
    scripts/bench              # full sizes, up to about a quarter of an hour

1. Filesystem overhead: git status, find, grep, reading every file, a large file, many small
   files (leased and git-ignored), compileall; native, through `leasefs mount`, and through
   bindfs (the peer); ratios to native.
2. Lease latency: acquire+release through the client, a first write through the mount against
   a write under a lease already held, the hand-off from one agent to a waiting one, and the
   propagation of a version to 1, 4 (and 16) other mounts.
3. Coordinator scale: lease cycles per second with 1, 10 and 100 agents; memory and database
   size with many leases and a long audit log.

Nothing is asserted: the report (stdout, ``results/bench-<time>.md`` and ``.json``) gives
medians and ratios, with the machine they were measured on. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"

if TYPE_CHECKING:
    from benchlib.modes import Mode
    from benchlib.report import Section


def _reexec_in_venv() -> None:
    """The benchmark imports leasefs and runs its CLI: it must run on the project's venv."""
    if Path(sys.prefix).resolve() != VENV.resolve() and (VENV / "bin" / "python").exists():
        python = str(VENV / "bin" / "python")
        os.execv(python, [python, str(Path(__file__).resolve()), *sys.argv[1:]])


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="leasefs benchmarks: ratios against native, bindfs and other references.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes; under a minute")
    parser.add_argument(
        "--only", default="1,2,3", help="figures to run, comma-separated (default: 1,2,3)"
    )
    parser.add_argument(
        "--tmpdir", type=Path, default=None, help="where the work directory goes (default: TMPDIR)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (logs, trees) afterwards"
    )
    parser.add_argument(
        "--results", type=Path, default=REPO / "results", help="where reports are written"
    )
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the run like Ctrl-C: every ``finally`` unmounts and stops what it started."""
    raise KeyboardInterrupt


def _guarded(title: str, figure: Callable[[], Section]) -> Section:
    """A figure that fails outright still gets a section saying why."""
    from benchlib.progress import say
    from benchlib.report import Section

    try:
        return figure()
    except Exception as exc:
        say(f"{title}: FAILED {type(exc).__name__}: {exc}")
        return Section(title, error=f"{type(exc).__name__}: {exc}")


def _run_figures(figures: set[str], mode: Mode, work: Path) -> list[Section]:
    from benchlib import coordinator_scale, fs_overhead, lease_latency
    from benchlib.procs import running_coordinator
    from benchlib.progress import say

    sections: list[Section] = []
    if figures & {"1", "2"}:
        say("starting the coordinator for figures 1 and 2")
        with running_coordinator(work / "coordinator", work / "coordinator.log") as coordinator:
            if "1" in figures:
                sections.append(
                    _guarded(
                        "1. Filesystem overhead",
                        lambda: fs_overhead.run(mode, work / "fs", coordinator.url),
                    )
                )
            if "2" in figures:
                sections.append(
                    _guarded(
                        "2. Lease latency",
                        lambda: lease_latency.run(mode, work / "latency", coordinator.url),
                    )
                )
    if "3" in figures:
        sections.append(
            _guarded("3. Coordinator scale", lambda: coordinator_scale.run(mode, work / "scale"))
        )
    return sections


def _tidy(work: Path, keep: bool) -> None:
    """Remove the work directory, unless a mount is still on it (never delete through one)."""
    from benchlib.mounts import fuse_mounts_under
    from benchlib.progress import say

    left = fuse_mounts_under(work)
    if left:
        say(f"WARNING: mounts left behind, not removing {work}: {', '.join(left)}")
    elif keep:
        say(f"work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    _reexec_in_venv()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from benchlib import report
    from benchlib.modes import FULL, QUICK
    from benchlib.progress import say

    args = _parse(argv)
    mode = QUICK if args.quick else FULL
    figures = {f.strip() for f in args.only.split(",") if f.strip()}
    signal.signal(signal.SIGTERM, _interrupt)
    started = datetime.now()
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="leasefs-bench-", dir=args.tmpdir))
    # Our own state directory: mount records and logs never touch the user's.
    os.environ["LEASEFS_DATA_DIR"] = str(work / "leasefs-data")
    say(f"leasefs benchmark, {mode.name} mode, figures {','.join(sorted(figures))}, in {work}")
    header: dict[str, Any] = {
        "mode": mode.name,
        "started": started.isoformat(timespec="seconds"),
        "parameters": vars(mode),
    }
    try:
        sections = _run_figures(figures, mode, work)
        header["machine"] = report.machine(work, REPO)  # after figure 1 may install bindfs
    finally:
        _tidy(work, args.keep)
    header["duration_s"] = time.monotonic() - began
    stamp = started.strftime("%Y%m%d-%H%M%S")
    md_path, json_path, text = report.write(args.results, stamp, header, sections)
    print(text)
    print(f"written: {md_path}\n         {json_path}")
    say(f"done in {header['duration_s']:.1f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("scripts/bench: interrupted; what it had started is stopped", file=sys.stderr)
        sys.exit(130)
