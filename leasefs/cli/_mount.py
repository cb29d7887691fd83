"""The mount commands of the command line: mount, umount, status, who, release."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import trio
import typer

from .._client import (
    Client,
    ControlError,
    LeasefsError,
    mount_status,
    release_now,
    resolve_coordinator_url,
    unmount_now,
)
from .._config import (
    SettingsError,
    StartFailed,
    _registry,
    default_agent_name,
    default_workspace,
    resolve,
    start_detached,
)
from .._fs import OtherUsers, is_mounted, other_users_refusal, read_fuse_conf, unmount
from .._mount import find_bypassers
from ..wire import IDLE_GRACE_S, LEASE_TTL_S, MAX_LEASE_TTL_S, MAX_WAIT_S, WAIT_S, LeaseScope

if TYPE_CHECKING:
    from .._mount import MountConfig

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 120.0


def fail(message: str) -> typer.Exit:
    typer.echo(f"leasefs: error: {message}", err=True)
    return typer.Exit(1)


def _repo_dir(repo: Path) -> Path:
    path = Path(os.path.realpath(repo))
    if not path.is_dir():
        raise fail(f"{repo} is not a directory")
    return path


def mount(
    repo: Annotated[Path, typer.Argument(help="The repository directory to mount over, in place.")],
    coordinator: Annotated[
        str | None, typer.Option(help="Coordinator URL (default: the embedded local one).")
    ] = None,
    agent: Annotated[
        str | None, typer.Option(help="This agent's name (default user@host).")
    ] = None,
    workspace: Annotated[
        str | None, typer.Option(help="Workspace name (default: from the origin remote).")
    ] = None,
    wait: Annotated[
        float | None,
        typer.Option(
            help="Seconds a write waits for a held file before EBUSY; 0: at once.",
            min=0.0,
            max=MAX_WAIT_S,
            show_default=str(WAIT_S),
        ),
    ] = None,
    ttl: Annotated[
        float | None,
        typer.Option(
            help="Lease TTL in seconds (renewed every TTL/3).",
            min=1.0,
            max=MAX_LEASE_TTL_S,
            show_default=str(LEASE_TTL_S),
        ),
    ] = None,
    idle_grace: Annotated[
        float | None,
        typer.Option(
            help="Seconds a lease is kept after the last change to its file (and longer "
            "while a process holds the file open for writing).",
            min=0.0,
            show_default=str(IDLE_GRACE_S),
        ),
    ] = None,
    lease_scope: Annotated[
        str | None,
        typer.Option(
            help="Whom this mount's leases exclude: 'workspace' (every agent, whatever its "
            "branch) or 'branch' (agents on the same branch); best set in leasefs.toml.",
            show_default="workspace",
        ),
    ] = None,
    allow_root: Annotated[
        bool,
        typer.Option(
            help="Let root use the mount too (sudo make install, a container running as root)."
        ),
    ] = False,
    allow_other: Annotated[
        bool,
        typer.Option(
            help="Let every user id use the mount (a build user, sudo -u); the kernel still "
            "checks each permission as it does natively."
        ),
    ] = False,
    file_handles: Annotated[
        bool,
        typer.Option(
            help="Serve every open(2) and close(2) of a file as a request, as a stock pyfuse3 "
            "must (slower reads: two requests per file; default off with the patched one)."
        ),
    ] = False,
    foreground: Annotated[bool, typer.Option(help="Serve in this process; do not detach.")] = False,
) -> None:
    """Mount REPO in place: from now on every change in it takes the file's lease first."""
    from .._mount import MountConfig  # the FUSE side loads only for commands that mount

    repo = _repo_dir(repo)
    if allow_root and allow_other:
        raise fail("--allow-root and --allow-other go alone: --allow-other lets root in too")
    others = OtherUsers.ALL if allow_other else OtherUsers.ROOT if allow_root else OtherUsers.NONE
    if (refusal := other_users_refusal(others, os.geteuid(), read_fuse_conf())) is not None:
        raise fail(refusal)
    record = _registry.read(repo)
    if is_mounted(repo) or (record is not None and _registry.process_alive(record.pid)):
        raise fail(f"{repo} is already mounted (see 'leasefs status {repo}')")
    try:
        url = resolve_coordinator_url(coordinator or None, repo)
        wait_s = float(resolve("wait", wait, repo))
        ttl_s = float(resolve("ttl", ttl, repo))
        idle_grace_s = float(resolve("idle_grace", idle_grace, repo))
        scope = _lease_scope(resolve("lease_scope", lease_scope, repo))
    except (LeasefsError, SettingsError) as exc:
        raise fail(str(exc)) from exc
    config = MountConfig(
        repo=repo,
        coordinator=url,
        workspace=workspace or resolve("workspace", None, repo) or default_workspace(repo),
        agent=agent or resolve("agent", None, repo) or default_agent_name(),
        wait_s=wait_s,
        ttl_s=ttl_s,
        idle_grace_s=idle_grace_s,
        lease_scope=scope,
        other_users=others,
        file_handles=file_handles,
    )
    _warn_bypassers(repo)
    if foreground:
        _serve_foreground(config)
    else:
        _serve_detached(config)


def _lease_scope(value: str) -> LeaseScope:
    if value not in ("workspace", "branch"):
        raise SettingsError(f"--lease-scope is {value!r}; it must be 'workspace' or 'branch'")
    return "branch" if value == "branch" else "workspace"


def _warn_bypassers(repo: Path) -> None:
    found = find_bypassers(repo, os.stat(repo).st_dev, exclude={os.getpid(), os.getppid()})
    if found:
        typer.echo(
            "leasefs: warning: these processes use the repository from before the mount and "
            "will keep seeing the real files underneath, bypassing leases (restart them, or "
            "cd out and back in):",
            err=True,
        )
        for bypasser in found:
            typer.echo(f"  {bypasser}", err=True)


def _serve_foreground(config: MountConfig) -> None:
    from .._mount import MountDaemon
    from ..wire import MountStatus

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )

    def ready(status: MountStatus) -> None:
        print(
            f"leasefs: mounted {status.repo} as {status.agent} in workspace {status.workspace} "
            f"(coordinator {status.coordinator})",
            flush=True,
        )

    try:
        trio.run(MountDaemon(config).serve, ready)
    except LeasefsError as exc:
        raise fail(str(exc)) from exc
    except KeyboardInterrupt:
        pass


def _serve_detached(config: MountConfig) -> None:
    _, _, log_path = _registry.paths_for(config.repo)
    command = [
        sys.executable, "-m", "leasefs", "mount", str(config.repo), "--foreground",
        "--coordinator", config.coordinator, "--workspace", config.workspace,
        "--agent", config.agent, "--wait", str(config.wait_s), "--ttl", str(config.ttl_s),
        "--idle-grace", str(config.idle_grace_s), "--lease-scope", config.lease_scope,
    ]  # fmt: skip
    if config.other_users is not OtherUsers.NONE:
        command.append(f"--allow-{'other' if config.other_users is OtherUsers.ALL else 'root'}")
    if config.file_handles:
        command.append("--file-handles")

    def ready() -> _registry.MountRecord | None:
        record = _registry.read(config.repo)
        return record if record is not None and is_mounted(config.repo) else None

    try:
        record = start_detached(command, log_path, ready, what="the mount", timeout=START_TIMEOUT_S)
    except StartFailed as exc:
        raise fail(str(exc)) from exc
    typer.echo(
        f"mounted {config.repo} as {record.agent} in workspace {record.workspace}\n"
        f"  coordinator {record.coordinator}\n  log {log_path}"
    )


def umount(repo: Annotated[Path, typer.Argument(help="The mounted repository.")]) -> None:
    """Release every lease (with its snapshot), unmount, leave REPO with the latest content."""
    gone = Path(os.path.realpath(repo))
    if not gone.is_dir():
        # The folder was removed after its mount daemon died: only the record is left.
        stale = _registry.read(gone)
        if stale is None or _registry.process_alive(stale.pid):
            raise fail(f"{repo} is not a directory")
        _registry.remove(gone)
        typer.echo(f"forgot the mount of {gone} (its folder is gone; its leases run out by TTL)")
        return
    repo = _repo_dir(repo)
    record = _registry.read(repo)
    if record is not None and _registry.process_alive(record.pid):
        try:
            unmount_now(Path(record.socket))
        except ControlError as exc:
            raise fail(str(exc)) from exc
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _registry.process_alive(record.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _registry.process_alive(record.pid):
            raise fail(f"the mount daemon (pid {record.pid}) did not stop; see {record.log}")
    elif not is_mounted(repo) and record is None:
        raise fail(f"{repo} is not mounted")
    if is_mounted(repo):
        # The daemon is gone (killed?) and left its mount behind: take it away.
        try:
            unmount(repo, lazy=True)
        except OSError as exc:
            raise fail(str(exc)) from exc
        typer.echo(f"unmounted {repo} (its mount daemon had died; its leases run out by TTL)")
    else:
        typer.echo(f"unmounted {repo}")
    _registry.remove(repo)


def _records_for(repo: Path | None) -> list[_registry.MountRecord]:
    if repo is not None:
        record = _registry.read(_repo_dir(repo))
        if record is None:
            raise fail(f"{repo} is not mounted")
        return [record]
    return _registry.all_records()


def _status_of(record: _registry.MountRecord) -> dict[str, Any]:
    if not _registry.process_alive(record.pid):
        return {"repo": record.repo, "dead": True}
    try:
        status = mount_status(Path(record.socket)).model_dump()
    except ControlError as exc:
        return {"repo": record.repo, "error": str(exc)}
    status["failed_authentications"] = _failed_authentications(record.coordinator)
    return status


def _failed_authentications(url: str) -> int | None:
    """What the coordinator counted since it started (None: it did not answer in time)."""

    async def ask() -> int:
        async with Client(url, timeout=2.0) as client:
            return (await client.health()).failed_authentications

    try:
        return trio.run(ask)
    except LeasefsError:
        return None


def status(
    repo: Annotated[
        Path | None, typer.Argument(help="A mounted repository (default: all).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Mounts, held leases with age and TTL, waiters, snapshots pending, conflicts."""
    statuses = [_status_of(r) for r in _records_for(repo)]
    if as_json:
        typer.echo(json.dumps(statuses, indent=2))
        return
    if not statuses:
        typer.echo("no leasefs mounts")
        return
    for item in statuses:
        typer.echo(_format_status(item))


def _format_status(item: dict[str, Any]) -> str:
    if item.get("dead"):
        return f"{item['repo']}: the mount daemon died; run 'leasefs umount {item['repo']}'"
    if "error" in item:
        return f"{item['repo']}: {item['error']}"
    lines = [
        f"{item['repo']}  agent {item['agent']} (id {item['agent_id']}), workspace "
        f"{item['workspace']}, branch {item.get('branch', 'main')}"
        + (" (leases exclude this branch only)" if item.get("lease_scope") == "branch" else ""),
        f"  coordinator {item['coordinator']}: "
        + ("reachable" if item["coordinator_reachable"] else "UNREACHABLE (writes in scope fail)")
        + ("; events live" if item["events_connected"] else "; events reconnecting")
        + (
            f"; {failed} failed authentication(s) since it started"
            if (failed := item.get("failed_authentications"))
            else ""
        ),
    ]
    if item["held"]:
        lines.append("  leases held:")
        for h in item["held"]:
            waiting = item["waiters"].get(h["path"], [])
            by = h.get("agent")
            lines.append(
                f"    {h['path']}"
                + (f" by {by}" if by and by != item["agent"] else "")
                + f"  held {h['age_s']:.0f}s, expires in {h['expires_in_s']:.0f}s, "
                f"last change {h['quiet_s']:.0f}s ago"
                + (", open for writing" if h["open_for_writing"] else "")
                + f", token {h['token']}"
                + (f", waiting: {', '.join(waiting)}" if waiting else "")
                + ("" if h["state"] == "held" else f" [{h['state']}]")
            )
    else:
        lines.append("  no leases held")
    for r in item.get("run_agents", []):
        running = ", ".join(str(p) for p in r["processes"])
        lines.append(
            f"  agent {r['agent']} (id {r['agent_id']}, {r['tool'] or 'agent'}) works here too: "
            f"leasefs run process {running} and all it started"
        )
    lines.append(
        f"  snapshots pending: {item['pending_snapshots']}; versions applied: "
        f"{item['versions_applied']}; writes refused: {item['refused_writes']}"
    )
    for c in item["conflicts"]:
        lines.append(
            f"  CONFLICT {c['path']}: kept local; {c['author']}'s version {c['version_id']} "
            + (f"saved as {c['copy_path']}" if c["copy_path"] else "(a deletion) not applied")
        )
    for notice in item.get("notices", []):
        lines.append(f"  NOTICE {notice}: changing it here too is a merge conflict to come")
    for b in item["bypassers"]:
        lines.append(f"  BYPASSING: {b} sees the real files underneath")
    return "\n".join(lines)


def _locate(path: Path) -> tuple[_registry.MountRecord, str]:
    """The mount that contains ``path`` and the path relative to its repository."""
    real = os.path.realpath(path)
    best: _registry.MountRecord | None = None
    for record in _registry.all_records():
        if (real == record.repo or real.startswith(record.repo + "/")) and (
            best is None or len(record.repo) > len(best.repo)
        ):
            best = record
    if best is None:
        raise fail(f"{path} is not inside a leasefs mount")
    return best, os.path.relpath(real, best.repo)


def who(path: Annotated[Path, typer.Argument(help="A file inside a mounted repository.")]) -> None:
    """Who holds PATH, since when, for what work, and who waits for it."""
    record, relative = _locate(path)

    async def ask() -> None:
        async with Client(record.coordinator, record.token) as client:
            [state] = await client.holders([relative])
        if state.lease is None:
            typer.echo(f"{relative}: free")
        else:
            lease = state.lease
            since = datetime.fromtimestamp(lease.acquired_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            holder = lease.holder
            typer.echo(
                f"{relative}: held by {holder.label} ({holder.tool or 'agent'},"
                f" id {holder.id}) since {since}" + (f", work: {lease.work}" if lease.work else "")
            )
        if state.waiters:
            typer.echo("  waiting: " + ", ".join(w.name for w in state.waiters))

    try:
        trio.run(ask)
    except LeasefsError as exc:
        raise fail(str(exc)) from exc
    _who_here(record, relative)


def _who_here(record: _registry.MountRecord, relative: str) -> None:
    """In a tree shared by `leasefs run` agents: which of them holds it, by which process."""
    try:
        here = mount_status(Path(record.socket), timeout=10)
    except ControlError:
        return
    for held in here.held:
        if held.path != relative or not here.run_agents:
            continue
        runs = [r for r in here.run_agents if r.agent == held.agent]
        by = (f" (leasefs run process {', '.join(map(str, runs[0].processes))} and all it "
              "started)") if runs else " (this mount's own agent)"  # fmt: skip
        writing = ", open for writing" if held.open_for_writing else ""
        typer.echo(f"  in this tree: {held.agent}{by}{writing}")


def release(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files to release (default: all of this mount's).")
    ] = None,
) -> None:
    """Give leases back now, with their snapshots, instead of after the idle grace."""
    targets = paths or [Path.cwd()]
    by_mount: dict[str, tuple[_registry.MountRecord, list[str]]] = {}
    for target in targets:
        record, relative = _locate(target)
        entry = by_mount.setdefault(record.repo, (record, []))
        if relative != "." and paths:
            entry[1].append(relative)
    for record, relatives in by_mount.values():
        try:
            released = release_now(Path(record.socket), relatives)
        except ControlError as exc:
            raise fail(str(exc)) from exc
        typer.echo(
            f"released {len(released)} lease(s) in {record.repo}"
            + (": " + ", ".join(released) if released else "")
        )


def register(app: typer.Typer) -> None:
    for command in (mount, umount, status, who, release):
        app.command()(command)
