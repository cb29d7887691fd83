"""Figure 2: what a lease costs an agent in time, each figure beside a reference.

- Through the client: acquire+release against a bare HTTP round trip (GET /v1/health).
- Through a mount: the first write to a new file (one lease round trip) against the same
  write under a lease already held (none), and that against the native write.
- Hand-off: agent A holds a file open, agent B (``--wait``) blocks in its first write(2) to
  it; from A's close(2) until B's write returns (A's mount sees the file closed, snapshots and
  releases, B is granted and pulls A's version).
- Propagation: from the writer's close(2) until every other mount shows the new content.

All mounts are clones of one origin, in one workspace, each a `leasefs mount` process.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trio

from leasefs import Client
from leasefs._config import _registry

from .modes import Mode
from .mounts import LeasefsMount, stop_mounts
from .progress import say
from .report import Section, Table
from .stats import fmt_ratio, fmt_seconds, median, percentile, ratio
from .tree import clone, make_origin

WORKSPACE = "latency"
WRITER_IDLE_GRACE_S = 0.0  # A's grace: the hand-off and propagation start at its close
WAIT_S = 30
POLL_TIMEOUT_S = 30.0
PAYLOAD = b"a line written by the benchmark\n"


@dataclass
class Figures:
    """Named lists of seconds; each becomes a row (p50, p99, n) of the table."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    vanished_reads: int = 0  # a reader's open failed with ENOENT while a version moved in

    def add(self, name: str, seconds: float) -> None:
        self.samples.setdefault(name, []).append(seconds)

    def get(self, name: str) -> list[float]:
        return self.samples.get(name, [])


# -- the client ----------------------------------------------------------------------------


async def _client_round_trips(url: str, iterations: int, figures: Figures) -> None:
    """Alternate a bare round trip with an acquire+release of a fresh path."""
    async with Client(url) as client:
        await client.ensure_workspace("client-latency")
        await client.register("client-latency", "bench-client", host="bench", tool="bench")
        for i in range(iterations):
            started = time.perf_counter()
            await client.health()
            figures.add("health", time.perf_counter() - started)
            started = time.perf_counter()
            grant = await client.acquire([f"client/p{i:06d}"])
            acquired = time.perf_counter()
            await client.release(grant.leases)
            done = time.perf_counter()
            figures.add("acquire", acquired - started)
            figures.add("release", done - acquired)
            figures.add("cycle", done - started)


# -- writes through a mount ----------------------------------------------------------------


def _timed_write(path: Path, flags: int) -> float:
    """open + write + close of one small file, timed from the first system call."""
    started = time.perf_counter()
    fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, PAYLOAD)
    finally:
        os.close(fd)
    return time.perf_counter() - started


def _first_and_held_writes(native: Path, mounted: Path, iterations: int, figures: Figures) -> None:
    """Per iteration, native then mounted: create a new file (first write: the mount takes a
    lease), then write it again at once (held: within the idle grace, no round trip)."""
    create = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    rewrite = os.O_WRONLY | os.O_TRUNC
    for i in range(iterations):
        for name, root in (("native", native), ("leasefs", mounted)):
            path = root / "lat" / f"w{i:05d}.txt"
            figures.add(f"first-{name}", _timed_write(path, create))
            figures.add(f"held-{name}", _timed_write(path, rewrite))


def _has_waiter(url: str, token: str, path: str) -> bool:
    """Whether someone queues for ``path`` on the coordinator: B is blocked in write(2)."""

    async def ask() -> bool:
        async with Client(url, token) as client:
            [status] = await client.holders([path])
        return bool(status.waiters)

    return trio.run(ask)


@dataclass
class _Written:
    """What B's blocked write(2) came to, filled in by its thread."""

    at: float | None = None
    error: OSError | None = None


def _write_in_thread(path: Path, outcome: _Written) -> None:
    """B's side of a hand-off: its first write blocks until the mount is granted the lease
    (the open itself is no change, and does not wait)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, b"from b\n")
            outcome.at = time.perf_counter()
        finally:
            os.close(fd)
    except OSError as exc:
        outcome.error = exc


def _hand_off(a: LeasefsMount, b: LeasefsMount, url: str, token: str, index: int) -> float:
    """One hand-off of ``handoff/f{index}.txt`` from A (holding it open) to B (waiting)."""
    relative = f"handoff/f{index:03d}.txt"
    fd = os.open(a.repo / relative, os.O_WRONLY | os.O_APPEND)
    outcome = _Written()
    waiter = threading.Thread(
        target=_write_in_thread, args=(b.repo / relative, outcome), daemon=True
    )
    try:
        os.write(fd, b"from a\n")
        waiter.start()
        deadline = time.monotonic() + 10
        while not _has_waiter(url, token, relative):
            if time.monotonic() > deadline or not waiter.is_alive():
                raise RuntimeError(f"B never queued for {relative}: {outcome}")
            time.sleep(0.01)
    finally:
        closing = time.perf_counter()
        os.close(fd)
    waiter.join(WAIT_S + 30)
    if outcome.at is None:
        raise RuntimeError(f"B's write to {relative} did not proceed: {outcome.error or 'blocked'}")
    return outcome.at - closing


def _propagate(
    writer: LeasefsMount,
    readers: Sequence[LeasefsMount],
    relative: str,
    index: int,
    figures: Figures,
) -> float:
    """Write a new version through the writer; seconds from its close until all readers see it."""
    content = f"version {index} of {relative}, {time.time_ns()}\n".encode()
    fd = os.open(writer.repo / relative, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, content)
    finally:
        closing = time.perf_counter()
        os.close(fd)
    pending = [reader.repo / relative for reader in readers]
    deadline = time.monotonic() + POLL_TIMEOUT_S
    while pending:
        pending = [path for path in pending if _read(path, figures) != content]
        if pending and time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} mount(s) never showed version {index}")
        if pending:
            time.sleep(0.001)
    return time.perf_counter() - closing


def _read(path: Path, figures: Figures) -> bytes | None:
    """A reader's view of the file. The file always exists, yet an open racing with the
    version being renamed into place can fail with ENOENT: counted, and read again."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        figures.vanished_reads += 1
        return None


# -- the run -------------------------------------------------------------------------------


class Mounts:
    """Clones of one origin, mounted in the workspace; all stopped in ``stop_all``."""

    def __init__(self, work: Path, origin: Path, url: str) -> None:
        self.work = work
        self.origin = origin
        self.url = url
        self.all: list[LeasefsMount] = []

    def add(self, specs: Sequence[tuple[str, Sequence[str]]]) -> list[LeasefsMount]:
        """Clone and mount several at once (each mount's start-up is a Python start-up);
        ``specs`` are (agent name, `leasefs mount` options)."""
        started = []
        for name, options in specs:
            clone(self.origin, self.work / name)
            mount = LeasefsMount(
                self.work / name,
                url=self.url,
                workspace=WORKSPACE,
                agent=name,
                log_path=self.work / f"{name}.log",
                options=options,
            )
            self.all.append(mount)
            started.append(mount.start())
        for mount in started:
            mount.wait_ready()
        return started

    def stop_all(self) -> None:
        stop_mounts(self.all)


def _origin_files(mode: Mode) -> dict[str, str]:
    files = {"README.md": "# latency\n", "lat/README": "first writes land here\n"}
    files.update({f"handoff/f{i:03d}.txt": "start\n" for i in range(mode.handoff_iterations)})
    files.update({f"prop-{k}.txt": "start\n" for k in mode.propagation_mounts})
    return files


def _measure_mounts(mode: Mode, work: Path, mounts: Mounts, figures: Figures) -> None:
    native = work / "native"
    clone(mounts.origin, native)
    say("fig 2: mounting agents A (idle grace 0) and B (--wait 30)")
    a, b = mounts.add(
        [("a", ["--idle-grace", str(WRITER_IDLE_GRACE_S)]), ("b", ["--wait", str(WAIT_S)])]
    )
    say(f"fig 2: first vs held writes, {mode.write_iterations} each, native and through B")
    _first_and_held_writes(native, b.repo, mode.write_iterations, figures)
    b.settle()
    record_token = _token_of(a)
    for i in range(mode.handoff_iterations):
        seconds = _hand_off(a, b, mounts.url, record_token, i)
        figures.add("handoff", seconds)
        say(f"fig 2: hand-off {i + 1}/{mode.handoff_iterations}: {fmt_seconds(seconds)}")
    readers = [b]
    for count in mode.propagation_mounts:
        if count > len(readers):
            names = [f"r{n:02d}" for n in range(len(readers), count)]
            say(f"fig 2: mounting {len(names)} more reader(s), {count} in all")
            readers += mounts.add([(name, ()) for name in names])
        for i in range(mode.propagation_iterations):
            seconds = _propagate(a, readers[:count], f"prop-{count}.txt", i, figures)
            figures.add(f"propagation-{count}", seconds)
            say(
                f"fig 2: propagation to {count} mount(s), {i + 1}/{mode.propagation_iterations}:"
                f" {fmt_seconds(seconds)}"
            )


def _token_of(mount: LeasefsMount) -> str:
    """The agent token of a running mount (from its record), to ask the coordinator as it."""
    record = _registry.read(mount.repo)
    if record is None:
        raise RuntimeError(f"no mount record for {mount.repo}")
    return record.token


def run(mode: Mode, work: Path, url: str) -> Section:
    """Figure 2 against the coordinator at ``url``."""
    section = Section("2. Lease latency")
    work.mkdir(parents=True)
    figures = Figures()
    say(f"fig 2: {mode.client_iterations} acquire+release cycles through the client")
    try:
        trio.run(_client_round_trips, url, mode.client_iterations, figures)
        make_origin(work / "origin.git", work / "seed", _origin_files(mode))
        mounts = Mounts(work, work / "origin.git", url)
        try:
            _measure_mounts(mode, work, mounts, figures)
        finally:
            say("fig 2: unmounting")
            mounts.stop_all()
    except Exception as exc:  # a figure that breaks still reports what it measured
        section.error = f"{type(exc).__name__}: {exc}"
        say(f"fig 2: stopped early: {section.error}")
    section.tables.append(_table(mode, figures))
    section.data = {
        "samples_s": figures.samples,
        "writer_idle_grace_s": WRITER_IDLE_GRACE_S,
        "vanished_reads": figures.vanished_reads,
    }
    return section


def _row(
    table: Table, name: str, samples: list[float], against: str, reference: list[float]
) -> None:
    table.add(
        name,
        fmt_seconds(median(samples)),
        fmt_seconds(percentile(samples, 99)),
        str(len(samples)),
        against,
        fmt_seconds(median(reference)),
        fmt_ratio(ratio(median(samples), median(reference))),
    )


def _table(mode: Mode, figures: Figures) -> Table:
    table = Table(
        "Latency: p50 and p99, each against a reference measured in the same run",
        ["measure", "p50", "p99", "n", "against", "its p50", "ratio (p50)"],
    )
    get = figures.get
    _row(table, "client: acquire (1 path)", get("acquire"), "GET /v1/health", get("health"))
    _row(table, "client: release (1 path)", get("release"), "GET /v1/health", get("health"))
    _row(table, "client: acquire+release", get("cycle"), "GET /v1/health", get("health"))
    _row(
        table,
        "mount: first write, new file (takes a lease)",
        get("first-leasefs"),
        "same write, lease already held",
        get("held-leasefs"),
    )
    _row(
        table,
        "mount: write, lease already held",
        get("held-leasefs"),
        "same write, native",
        get("held-native"),
    )
    _row(
        table,
        "mount: first write, new file (takes a lease)",
        get("first-leasefs"),
        "same write, native",
        get("first-native"),
    )
    _row(
        table,
        "hand-off: A's close to B's waiting write",
        get("handoff"),
        "mount: first write (uncontended)",
        get("first-leasefs"),
    )
    for count in mode.propagation_mounts:
        reference = mode.propagation_mounts[0]
        _row(
            table,
            f"propagation: writer's close to {count} mount(s) showing it",
            get(f"propagation-{count}"),
            f"propagation to {reference}",
            get(f"propagation-{reference}"),
        )
    table.notes += [
        "Writes are open+write+close of a 32-byte file from Python, timed from the first call.",
        f"A (the holder, and the writer for propagation) runs with --idle-grace "
        f"{WRITER_IDLE_GRACE_S:g}: its lease goes back as soon as the file is closed. With "
        "the default 3 s grace, a waiter's recall still brings the lease back at the close; "
        "propagation to mounts nobody waits in would start 3 s later.",
        f"B runs with --wait {WAIT_S} and the default idle grace; other mounts with defaults.",
        "Propagation polls every mount's copy of the file (about every millisecond); each mount "
        "is its own process, all on this machine.",
    ]
    if figures.vanished_reads:
        table.notes.append(
            f"ODDITY: {figures.vanished_reads} read(s) of a file that always exists failed with "
            "ENOENT (FileNotFoundError) on a reader mount while a version was moved in."
        )
    return table
