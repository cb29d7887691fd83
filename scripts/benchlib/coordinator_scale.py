"""Figure 3: how the coordinator holds up with many agents, many leases, a long audit log.

Throughput: 1, 10 and 100 agents (one `Client` each, registered in a workspace of their own
per count) run acquire+release cycles on paths of their own for short slices; the counts
take turns (1, 10, 100, 1, 10, 100, …) so that drift spreads evenly. The load generator is
this process (Python, trio): its CPU use is reported beside the coordinator's, because on a
small machine either may be what limits the rate.

Reference: the same HTTP server answering a bare ASGI app (`http_ceiling`), the most
requests one core serves before any of our code runs.

Memory: the coordinator's resident memory (VmRSS) and its database on disk, at start, with
many leases held, and after a long audit log (acquire+release cycles of 1000 paths).
"""

from __future__ import annotations

import math
import sqlite3
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import trio

from leasefs import Client

from . import http_ceiling
from .modes import Mode
from .procs import Coordinator, running_coordinator
from .progress import say
from .report import Section, Table
from .stats import fmt_bytes, fmt_rate, fmt_ratio, fmt_seconds, percentile, ratio

BATCH = 1000  # paths per request, the coordinator's maximum
LONG_TTL_S = 3600.0  # leases held for the memory figure must not run out meanwhile
HOLDERS = 4


@dataclass
class Load:
    """What one agent count achieved over all its slices."""

    cycles: int = 0
    seconds: float = 0.0
    coordinator_cpu_s: float = 0.0
    generator_cpu_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


async def _register(url: str, workspace: str, count: int, stack: AsyncExitStack) -> list[Client]:
    clients = []
    for k in range(count):
        client = await stack.enter_async_context(Client(url, timeout=60))
        if k == 0:
            await client.ensure_workspace(workspace)
        await client.register(workspace, f"agent-{k:03d}", host="bench", tool="bench")
        clients.append(client)
    return clients


async def _agent(client: Client, k: int, deadline: float, load: Load) -> None:
    """Acquire and release one fresh path after another until the slice's deadline."""
    while trio.current_time() < deadline:
        path = f"agent{k:03d}/p{load.cycles:07d}"
        load.cycles += 1
        started = time.perf_counter()
        try:
            grant = await client.acquire([path])
            await client.release(grant.leases)
        except Exception:  # counted, not fatal: the rate says how often it happened
            load.errors += 1
            continue
        load.latencies.append(time.perf_counter() - started)


async def _slice(
    clients: list[Client], seconds: float, load: Load, coordinator: Coordinator
) -> None:
    cpu_before = await trio.to_thread.run_sync(coordinator.cpu_seconds)
    generator_before = time.process_time()
    started = time.perf_counter()
    deadline = trio.current_time() + seconds
    async with trio.open_nursery() as nursery:
        for k, client in enumerate(clients):
            nursery.start_soon(_agent, client, k, deadline, load)
    load.seconds += time.perf_counter() - started
    load.generator_cpu_s += time.process_time() - generator_before
    load.coordinator_cpu_s += await trio.to_thread.run_sync(coordinator.cpu_seconds) - cpu_before


async def _throughput(coordinator: Coordinator, mode: Mode) -> dict[int, Load]:
    loads = {count: Load() for count in mode.scale_agents}
    async with AsyncExitStack() as stack:
        agents = {}
        for count in mode.scale_agents:
            say(f"fig 3: registering {count} agent(s)")
            agents[count] = await _register(coordinator.url, f"scale-{count}", count, stack)
        for index in range(mode.scale_slices):
            for count in mode.scale_agents:
                before = loads[count].cycles
                await _slice(agents[count], mode.scale_slice_s, loads[count], coordinator)
                say(
                    f"fig 3: slice {index + 1}/{mode.scale_slices}, {count} agent(s): "
                    f"{loads[count].cycles - before} cycles"
                )
    return loads


# -- memory ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Footprint:
    label: str
    rss: int
    database: int
    leases: int
    audit_rows: int
    seconds: float  # to get there from the previous point


def _count(database: Path, table: str) -> int:
    """Rows in a table, read from the database file (read-only; WAL lets us read beside it)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as db:
        (count,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(count)


def _footprint(coordinator: Coordinator, label: str, seconds: float) -> Footprint:
    return Footprint(
        label=label,
        rss=coordinator.rss_bytes(),
        database=coordinator.database_bytes(),
        leases=_count(coordinator.database, "leases"),
        audit_rows=_count(coordinator.database, "audit"),
        seconds=seconds,
    )


async def _hold_leases(url: str, total: int) -> None:
    """``total`` leases held by a few agents, taken ``BATCH`` paths per request."""
    async with AsyncExitStack() as stack:
        holders = await _register(url, "memory", HOLDERS, stack)
        for batch in range(math.ceil(total / BATCH)):
            size = min(BATCH, total - batch * BATCH)
            paths = [f"held/b{batch:05d}/f{i:04d}" for i in range(size)]
            await holders[batch % HOLDERS].acquire(paths, ttl_s=LONG_TTL_S)


async def _grow_audit(url: str, database: Path, target: int) -> None:
    """Acquire+release cycles of ``BATCH`` paths until the audit log has ``target`` rows:
    one cycle to learn how many rows a cycle writes, then the rest in one go."""
    async with Client(url, timeout=120) as client:
        await client.register("memory", "auditor", host="bench", tool="bench")
        have = await trio.to_thread.run_sync(_count, database, "audit")
        cycle = 0
        per_cycle: int | None = None
        for _ in range(4):  # the second pass should reach the target; a few more at most
            if have >= target:
                return
            cycles = 1 if per_cycle is None else math.ceil((target - have) / per_cycle)
            for _ in range(cycles):
                paths = [f"audit/c{cycle:06d}/f{i:04d}" for i in range(BATCH)]
                grant = await client.acquire(paths)
                await client.release(grant.leases)
                cycle += 1
            before, have = have, await trio.to_thread.run_sync(_count, database, "audit")
            per_cycle = per_cycle or max(1, (have - before) // cycles)
            say(f"fig 3: {cycle} cycle(s) of {BATCH} paths: {have:,} audit rows")


def _memory(coordinator: Coordinator, mode: Mode) -> list[Footprint]:
    points = [_footprint(coordinator, "coordinator started, throughput agents registered", 0.0)]
    say(f"fig 3: taking {mode.memory_leases:,} leases ({BATCH} paths per request)")
    started = time.perf_counter()
    trio.run(_hold_leases, coordinator.url, mode.memory_leases)
    elapsed = time.perf_counter() - started
    points.append(_footprint(coordinator, f"+ {mode.memory_leases:,} leases held", elapsed))
    say(f"fig 3: growing the audit log to {mode.memory_audit_rows:,} rows")
    started = time.perf_counter()
    trio.run(_grow_audit, coordinator.url, coordinator.database, mode.memory_audit_rows)
    elapsed = time.perf_counter() - started
    points.append(
        _footprint(coordinator, f"+ audit log of {mode.memory_audit_rows:,} rows", elapsed)
    )
    return points


# -- the run ---------------------------------------------------------------------------------


def run(mode: Mode, work: Path) -> Section:
    """Figure 3, on a coordinator of its own (fresh database, nothing else running on it)."""
    section = Section("3. Coordinator scale")
    work.mkdir(parents=True)
    loads: dict[int, Load] = {}
    points: list[Footprint] = []
    ceiling: http_ceiling.Ceiling | None = None
    say("fig 3: starting a coordinator of its own")
    try:
        with running_coordinator(work / "data", work / "coordinator.log") as coordinator:
            loads = trio.run(_throughput, coordinator, mode)
            say("fig 3: the HTTP server alone, answering a bare ASGI app")
            ceiling = http_ceiling.measure(mode.scale_slices * mode.scale_slice_s)
            points = _memory(coordinator, mode)
    except Exception as exc:  # a figure that breaks still reports what it measured
        section.error = f"{type(exc).__name__}: {exc}"
        say(f"fig 3: stopped early: {section.error}")
    section.tables += [
        _throughput_table(mode, loads),
        _ceiling_table(loads, ceiling),
        _memory_table(points),
    ]
    section.data = {
        "http_ceiling": vars(ceiling) if ceiling else None,
        "throughput": {
            str(count): {k: v for k, v in vars(load).items() if k != "latencies"}
            | {"latencies_s": load.latencies}
            for count, load in loads.items()
        },
        "memory": [vars(p) for p in points],
    }
    return section


def _throughput_table(mode: Mode, loads: dict[int, Load]) -> Table:
    table = Table(
        "Lease cycles (acquire+release of one path) per second",
        [
            "agents",
            "cycles/s",
            "p50",
            "p99",
            "cycles",
            "errors",
            "coordinator CPU",
            "load generator CPU",
            "rate / 1 agent",
        ],
    )
    base = loads.get(mode.scale_agents[0])
    base_rate = base.cycles / base.seconds if base and base.seconds else None
    for count, load in loads.items():
        rate = load.cycles / load.seconds if load.seconds else None
        table.add(
            str(count),
            fmt_rate(rate),
            fmt_seconds(percentile(load.latencies, 50)),
            fmt_seconds(percentile(load.latencies, 99)),
            str(load.cycles),
            str(load.errors),
            f"{100 * load.coordinator_cpu_s / load.seconds:.0f}%" if load.seconds else "-",
            f"{100 * load.generator_cpu_s / load.seconds:.0f}%" if load.seconds else "-",
            fmt_ratio(ratio(rate, base_rate)),
        )
    table.notes += [
        f"{mode.scale_slices} slices of {mode.scale_slice_s:g} s per agent count, taking "
        "turns; every agent a `leasefs.Client` with its own connection, all in this process.",
        "CPU: share of one core over the slices; 100% of a core for the coordinator means it "
        "is the limit (one process, one trio thread plus sqlite in worker threads).",
    ]
    return table


def _ceiling_table(loads: dict[int, Load], ceiling: http_ceiling.Ceiling | None) -> Table:
    table = Table(
        "The HTTP server alone: the ceiling for one coordinator process",
        ["server", "requests or lease operations/s", "server CPU each", "CPU / bare"],
    )
    bare_cpu = ceiling.server_cpu_per_request_s if ceiling else None
    if ceiling:
        table.add(
            f"hypercorn (trio), bare ASGI answer, {http_ceiling.CONNECTIONS} connections",
            fmt_rate(ceiling.requests_per_s),
            fmt_seconds(ceiling.server_cpu_per_request_s),
            "1.00x",
        )
    for count, load in loads.items():
        operations = 2 * load.cycles  # an acquire and a release per cycle
        if not operations or not load.seconds:
            continue
        per_operation = load.coordinator_cpu_s / operations
        table.add(
            f"coordinator, {count} agent(s)",
            fmt_rate(operations / load.seconds),
            fmt_seconds(per_operation),
            fmt_ratio(ratio(per_operation, bare_cpu)),
        )
    if ceiling:
        table.notes.append(
            f"Bare server: {100 * ceiling.server_cpu_share:.0f}% of a core while loaded by raw "
            "sockets from a process of its own (prebuilt requests, next to no client CPU); "
            f"it dropped {ceiling.reconnects} kept-alive connection(s) under the load."
        )
    return table


def _memory_table(points: list[Footprint]) -> Table:
    table = Table(
        "Coordinator memory (VmRSS) and database size",
        ["state", "RSS", "RSS growth", "database + WAL", "leases", "audit rows", "took"],
    )
    previous: Footprint | None = None
    for point in points:
        growth = point.rss - previous.rss if previous else None
        table.add(
            point.label,
            fmt_bytes(point.rss),
            "" if growth is None else _signed(growth),
            fmt_bytes(point.database),
            f"{point.leases:,}",
            f"{point.audit_rows:,}",
            fmt_seconds(point.seconds) if previous else "",
        )
        previous = point
    if len(points) == 3:
        start, leased, audited = points
        table.notes.append(
            _per_unit(
                leased.rss - start.rss, leased.leases - start.leases, "RSS per 1,000 leases held"
            )
        )
        table.notes.append(
            _per_unit(
                audited.rss - leased.rss,
                audited.audit_rows - leased.audit_rows,
                "RSS per 1,000 audit rows",
            )
        )
        table.notes.append(
            _per_unit(
                audited.database - leased.database,
                audited.audit_rows - leased.audit_rows,
                "database per 1,000 audit rows (with their events)",
            )
        )
    table.notes.append(
        f"Leases: {HOLDERS} agents, {BATCH} paths per acquire, TTL {LONG_TTL_S:g} s. "
        f"Audit rows: one agent's acquire+release cycles of {BATCH} paths."
    )
    return table


def _per_unit(growth: int, units: int, what: str) -> str:
    if units <= 0:
        return f"{what}: -"
    return f"{what}: {fmt_bytes(growth * 1000 / units)}"


def _signed(growth: int) -> str:
    return ("+" if growth >= 0 else "") + fmt_bytes(growth)
