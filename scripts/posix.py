#!/usr/bin/env python3
"""POSIX conformance: pjdfstest natively and inside a leasefs mount, side by side.

    scripts/posix              # the whole suite (as root): about ten minutes
    scripts/posix --quick      # the subset CI runs: a few minutes
    scripts/posix --only chmod,link

pjdfstest (the suite FreeBSD, ZFS and many FUSE filesystems use; vendored in
`scripts/vendor/`) is built into ``build/pjdfstest`` and run as it is meant to be run: as
root, ``prove -r`` from inside the folder under test. It runs once in a folder of the
native filesystem, then inside a mount of a fresh clone (``--allow-other``, as one agent,
while a second agent's mount of the same workspace holds an unrelated file). Each folder
of tests (chmod, link, ...) is one ``prove`` run with a timeout, so a hang fails its folder
instead of the run.

The report: both failure counts and every test that passes natively but fails mounted.
Those named in `DELIBERATE` (each with its reason, and in the README) are expected; any
other is *unexpected*, and the exit status is 1. ``--json FILE`` writes the figures too.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
TARBALL = REPO / "scripts" / "vendor" / "pjdfstest.tar.gz"
BUILD = REPO / "build" / "pjdfstest"

QUICK = ("chmod", "chown", "link", "mkfifo", "rename", "truncate", "unlink", "utimensat")
"""The folders CI runs: mode bits and set-ID clearing, ownership, hard links, special files,
renames, sizes and times; together a few minutes on a small machine."""

FOLDER_TIMEOUT_S = 900.0  # one folder of tests; a wedged mount fails this folder only

_OWN_INODE = (
    "a second name made with link(2) has an inode number of its own: each name is an inode of "
    "its own to the kernel in a mount, so every write (which carries only an inode) is known by "
    "the name it came through and takes that name's lease"
)
DELIBERATE: dict[str, str] = {
    f"rename/00.t {n}": _OWN_INODE for n in (9, 12, 24, 27, 39, 42, 54, 57, 69, 72)
}
"""Tests that fail inside a mount on purpose: test id ("chmod/00.t 12") -> why. Each is
named in the README's "POSIX conformance" section with the same reason."""


def _reexec_in_venv() -> None:
    """The mounts run the project's CLI: this script runs on the project's venv."""
    if Path(sys.prefix).resolve() != VENV.resolve() and (VENV / "bin" / "python").exists():
        python = str(VENV / "bin" / "python")
        os.execv(python, [python, str(Path(__file__).resolve()), *sys.argv[1:]])


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- building -------------------------------------------------------------------------------


def _ensure_tools() -> None:
    """autoreconf and prove, installed with apt-get if missing (root only)."""
    missing = [
        tool for tool in ("autoreconf", "automake", "prove", "make", "cc") if not shutil.which(tool)
    ]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(f"scripts/posix needs {', '.join(missing)} (Debian: autoconf automake)")
    say(f"installing autoconf automake (missing: {', '.join(missing)})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "autoconf", "automake", "make", "gcc", "perl"]
    if subprocess.run(install, env=env, capture_output=True, timeout=900).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=900)
        subprocess.run(install, env=env, check=True, capture_output=True, timeout=900)


def build() -> Path:
    """``build/pjdfstest`` built from the vendored tarball, once per tarball content."""
    digest = hashlib.sha256(TARBALL.read_bytes()).hexdigest()
    stamp = BUILD / ".built-from"
    binary = BUILD / "pjdfstest"
    if binary.exists() and stamp.exists() and stamp.read_text() == digest:
        return BUILD
    _ensure_tools()
    say(f"building pjdfstest in {BUILD}")
    shutil.rmtree(BUILD, ignore_errors=True)
    BUILD.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD.parent) as unpack:
        with tarfile.open(TARBALL) as archive:
            archive.extractall(unpack, filter="data")
        (Path(unpack) / "pjdfstest").rename(BUILD)
    for step in (["autoreconf", "-ifs"], ["./configure"], ["make", "pjdfstest"]):
        done = subprocess.run(step, cwd=BUILD, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise SystemExit(f"building pjdfstest: {' '.join(step)} failed:\n{done.stderr[-3000:]}")
    stamp.write_text(digest)
    return BUILD


# -- running and reading TAP ----------------------------------------------------------------


@dataclass
class Outcome:
    """One run of the suite in one folder: every test's result, by test id."""

    where: str
    results: dict[str, str] = field(default_factory=dict)  # test id -> "" (ok) or the failure
    plans: dict[str, int] = field(default_factory=dict)  # test file -> tests it announced
    broken: list[str] = field(default_factory=list)  # folders that timed out or died
    seconds: float = 0.0

    @property
    def failed(self) -> dict[str, str]:
        return {test: why for test, why in self.results.items() if why}


_HEADER = re.compile(r"^(?P<file>\S+\.t) \.+")
_TAP = re.compile(r"^(?P<ok>not ok|ok) (?P<n>\d+)(?P<rest>.*)$")
_PLAN = re.compile(r"^1\.\.(?P<count>\d+)")
_LONG_NAME = re.compile(r"[0-9a-f]{32,}(?:/[0-9a-f]{32,})+")


def parse_prove(output: str, tests_root: Path, outcome: Outcome) -> None:
    """Each test's result ("" for a pass, else the failure) and each file's plan, from
    ``prove -v`` output, into ``outcome``."""
    results = outcome.results
    current = None
    for line in output.splitlines():
        if header := _HEADER.match(line):
            current = os.path.relpath(header["file"], tests_root)
            line = line[header.end() :].strip()
        if current is not None and (plan := _PLAN.match(line.strip())):
            outcome.plans[current] = int(plan["count"])
        if current is None or not (tap := _TAP.match(line.strip())):
            continue
        todo = "# TODO" in tap["rest"] or "# SKIP" in tap["rest"]
        failed = tap["ok"] == "not ok" and not todo
        why = _LONG_NAME.sub(lambda m: f"<{len(m[0])}-byte path>", tap["rest"].strip(" -"))
        results[f"{current} {tap['n']}"] = (why or "failed") if failed else ""


def run_suite(suite: Path, folders: Sequence[str], cwd: Path, where: str) -> Outcome:
    """``prove -v -r`` of each folder of tests, from inside ``cwd``."""
    outcome = Outcome(where)
    started = time.monotonic()
    tests_root = suite / "tests"
    for folder in folders:
        say(f"  {where}: {folder}")
        try:
            done = subprocess.run(
                ["prove", "-v", "-r", str(tests_root / folder)],
                cwd=cwd, capture_output=True, text=True, timeout=FOLDER_TIMEOUT_S,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            output = done.stdout
        except subprocess.TimeoutExpired as exc:
            output = (
                (exc.stdout or b"").decode(errors="replace")
                if isinstance(exc.stdout, bytes)
                else (exc.stdout or "")
            )
            outcome.broken.append(f"{folder}: timed out after {FOLDER_TIMEOUT_S:g} s")
        parse_prove(output, tests_root, outcome)
    outcome.seconds = time.monotonic() - started
    return outcome


# -- the mounts -----------------------------------------------------------------------------


@contextlib.contextmanager
def mounted_trees(work: Path) -> Iterator[tuple[Path, dict[str, object]]]:
    """A workspace of two agents: alice's mount (where the suite runs, ``--allow-other``)
    and bob's, holding ``bob.txt`` throughout. Yields alice's tree and a note of the setup;
    every mount and the coordinator are stopped whatever happens."""
    from benchlib.mounts import LeasefsMount, stop_mounts
    from benchlib.procs import running_coordinator

    os.environ["LEASEFS_DATA_DIR"] = str(work / "leasefs-data")
    origin = work / "origin.git"
    seed = work / "seed"
    git = ["git", "-c", "user.email=posix@example.com", "-c", "user.name=posix"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(seed)], check=True)
    (seed / "README.md").write_text("# pjdfstest runs here\n")
    (seed / "bob.txt").write_text("bob's file\n")
    subprocess.run([*git, "-C", str(seed), "add", "."], check=True)
    subprocess.run([*git, "-C", str(seed), "commit", "-q", "-m", "seed"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(seed), str(origin)], check=True)
    trees = {name: work / name for name in ("alice", "bob")}
    for tree in trees.values():
        subprocess.run(["git", "clone", "-q", str(origin), str(tree)], check=True)
    with running_coordinator(work / "coordinator", work / "coordinator.log") as coordinator:
        mounts = [
            LeasefsMount(trees["alice"], url=coordinator.url, workspace="posix", agent="alice",
                         log_path=work / "alice.log", options=["--allow-other", "--wait", "0"]),
            LeasefsMount(trees["bob"], url=coordinator.url, workspace="posix", agent="bob",
                         log_path=work / "bob.log", options=["--idle-grace", "3600"]),
        ]  # fmt: skip
        try:
            for mount in mounts:
                mount.start()
            for mount in mounts:
                mount.wait_ready()
            with open(trees["bob"] / "bob.txt", "a") as f:
                f.write("bob holds this file while the suite runs\n")
            yield trees["alice"], {"bob_held": [h["path"] for h in mounts[1].status()["held"]]}
            held = [h["path"] for h in mounts[1].status()["held"]]
            if held != ["bob.txt"]:
                raise SystemExit(f"bob's lease on bob.txt did not last the run: {held}")
            say("  bob still holds bob.txt")
        finally:
            stop_mounts(mounts)


# -- the report -----------------------------------------------------------------------------


def compare(native: Outcome, mounted: Outcome) -> dict[str, dict[str, str]]:
    """Tests that pass natively and fail mounted (or never ran mounted), split into the
    deliberate ones, the unexpected ones, and those pjdfstest does not require of a FUSE
    filesystem (a file that announces one test and passes it there: ``require`` said no)."""
    regressions = {
        test: mounted.results.get(test, "did not run inside the mount")
        for test, why in native.results.items()
        if not why and mounted.results.get(test, "missing")
    }
    not_required = {
        t: "pjdfstest does not require it of this filesystem type"
        for t in regressions
        if mounted.plans.get(t.rsplit(" ", 1)[0]) == 1 and t not in mounted.results
    }
    deliberate = {t: DELIBERATE[t] for t in regressions if t in DELIBERATE}
    unexpected = {
        t: why for t, why in regressions.items() if t not in DELIBERATE and t not in not_required
    }
    return {"deliberate": deliberate, "unexpected": unexpected, "not_required": not_required}


def report(native: Outcome, mounted: Outcome, split: dict[str, dict[str, str]]) -> str:
    lines = [
        "# pjdfstest: native against inside a leasefs mount",
        "",
        "| where | tests | failed | seconds |",
        "| --- | ---: | ---: | ---: |",
    ]
    for outcome in (native, mounted):
        lines.append(
            f"| {outcome.where} | {len(outcome.results)} | {len(outcome.failed)} "
            f"| {outcome.seconds:.0f} |"
        )
    for outcome in (native, mounted):
        lines += [f"- {outcome.where}: {problem}" for problem in outcome.broken]
    lines += ["", f"Pass natively, fail mounted: {len(split['unexpected'])} unexpected, "
              f"{len(split['deliberate'])} deliberate; {len(split['not_required'])} not "
              "required of a FUSE filesystem by pjdfstest (not run there)."]  # fmt: skip
    for test, why in sorted(split["unexpected"].items(), key=lambda kv: _order(kv[0])):
        lines.append(f"  UNEXPECTED {test}: {why}")
    for test, why in sorted(split["deliberate"].items(), key=lambda kv: _order(kv[0])):
        lines.append(f"  deliberate {test}: {why}")
    return "\n".join(lines)


def _order(test: str) -> tuple[str, int]:
    name, number = test.rsplit(" ", 1)
    return name, int(number)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/posix", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the CI subset: " + ", ".join(QUICK))
    parser.add_argument("--only", default="", help="folders of tests, comma-separated")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    parser.add_argument("--tmpdir", type=Path, default=None, help="where the work folder goes")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("pjdfstest runs as root (it acts as other users with setuid)")
    suite = build()
    every = sorted(p.name for p in (suite / "tests").iterdir() if p.is_dir())
    folders = [f for f in args.only.split(",") if f] or (list(QUICK) if args.quick else every)
    if unknown := sorted(set(folders) - set(every)):
        raise SystemExit(
            f"no such folder of tests: {', '.join(unknown)} (there are: {', '.join(every)})"
        )
    with (
        tempfile.TemporaryDirectory(prefix="leasefs-posix-", dir=args.tmpdir) as temp,
        ThreadPoolExecutor(1) as beside,
    ):
        work = Path(temp)
        (work / "native").mkdir()
        # Side by side: the suite spends most of its time in `sleep 1` (ctime checks).
        say("pjdfstest natively and inside a leasefs mount, side by side")
        native_run = beside.submit(run_suite, suite, folders, work / "native", "native")
        with mounted_trees(work) as (tree, setup):
            inside = tree / "pjdfstest-run"
            inside.mkdir()
            mounted = run_suite(suite, folders, inside, "leasefs mount")
        native = native_run.result()
    split = compare(native, mounted)
    print(report(native, mounted, split))
    if args.json is not None:
        args.json.write_text(json.dumps({
            "folders": folders, "setup": setup,
            **{o.where: {"tests": len(o.results), "failed": o.failed, "broken": o.broken,
                         "seconds": o.seconds} for o in (native, mounted)},
            **split,
        }, indent=2))  # fmt: skip
    return 1 if split["unexpected"] or mounted.broken else 0


if __name__ == "__main__":
    _reexec_in_venv()
    sys.exit(main())
