"""`leasefs commit -m MSG`: commit exactly this agent's changes in a tree other agents share.

`git commit -a` or `git add -A` in a shared tree takes every agent's uncommitted work into one
commit. This commits only the changed files that are this agent's: held by it now, or last
recorded by it (its lease history on the coordinator) with the content still as it left it.
Every other change stays in the working tree, uncommitted and untouched, and the index keeps
whatever else was staged.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import trio
import typer

from .._client import LeasefsError, acting_client, resolve_identity, sha256_of_file
from ..wire import PathStatus, Version

_GIT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Verdict:
    mine: list[str]
    others: dict[str, str]  # path -> why it is not this agent's to commit


def choose_own(
    agent: str,
    changed: Sequence[str],
    holders: Mapping[str, str | None],
    latest: Mapping[str, Version | None],
    local: Mapping[str, str | None],
) -> Verdict:
    """Which of the ``changed`` paths are ``agent``'s: held by it now; or free, with its own
    version the latest and the file still as that version left it (``local``: the file's
    sha256, None if it is gone)."""
    mine: list[str] = []
    others: dict[str, str] = {}
    for path in changed:
        holder = holders.get(path)
        version = latest.get(path)
        if holder is not None:
            if holder == agent:
                mine.append(path)
            else:
                others[path] = f"held by {holder}"
        elif version is None:
            others[path] = "changed by nobody through leasefs (git or a tool outside the mount)"
        elif version.author.name != agent:
            others[path] = f"last changed by {version.author.name}"
        elif (None if version.deleted else version.hash) != local.get(path):
            others[path] = "changed since your last version of it"
        else:
            mine.append(path)
    return Verdict(mine=mine, others=others)


def git_changes(repo: Path) -> list[str]:
    """Every path `git status` shows as changed, new or gone (both names of a rename)."""
    out = _git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all").stdout
    entries = out.split("\0")
    paths: list[str] = []
    index = 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if len(entry) < 4:
            continue
        paths.append(entry[3:])
        if entry[0] in "RC":  # a rename or copy: its source follows
            paths.append(entries[index])
            index += 1
    return list(dict.fromkeys(paths))


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                              check=True, timeout=_GIT_TIMEOUT_S)  # fmt: skip
    except subprocess.CalledProcessError as exc:
        raise LeasefsError(f"git {args[0]} failed: {exc.stderr.strip()}") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LeasefsError(f"git {args[0]} failed: {exc}") from exc


def _local_hash(repo: Path, path: str) -> str | None:
    try:
        return sha256_of_file(repo / path)[0]
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def commit(
    message: Annotated[str, typer.Option("--message", "-m", help="The commit message.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be committed, commit nothing.")
    ] = False,
) -> None:
    """Commit exactly the files you (this agent) changed, leaving other agents' changes in the
    tree uncommitted and untouched (use it instead of `git commit -a` in a shared tree)."""

    async def main() -> tuple[str, Path, Verdict]:
        identity = await trio.to_thread.run_sync(resolve_identity, Path.cwd(), None, None)
        if identity.repo is None or identity.mount_socket is None:
            raise LeasefsError("leasefs commit works inside a mounted repository")
        repo = identity.repo
        changed = await trio.to_thread.run_sync(git_changes, repo)
        async with acting_client(identity, tool="leasefs-cli") as client:
            statuses: list[PathStatus] = await client.holders(changed) if changed else []
            holders = {s.path: s.lease.holder.name if s.lease else None for s in statuses}
            latest = {path: await client.latest_version(path) for path in changed}
        local = {path: await trio.to_thread.run_sync(_local_hash, repo, path) for path in changed}
        return identity.agent, repo, choose_own(identity.agent, changed, holders, latest, local)

    try:
        agent, repo, verdict = trio.run(main)
    except LeasefsError as exc:
        typer.echo(f"leasefs: error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for path, why in sorted(verdict.others.items()):
        typer.echo(f"  left out {path}: {why}")
    if not verdict.mine:
        typer.echo(f"nothing of {agent}'s to commit")
        return
    if dry_run:
        typer.echo(
            f"would commit {len(verdict.mine)} file(s) of {agent}: " + ", ".join(verdict.mine)
        )
        return
    try:
        _git(repo, "add", "-A", "--", *verdict.mine)
        _git(repo, "commit", "-q", "-m", message, "--", *verdict.mine)
        head = _git(repo, "rev-parse", "--short", "HEAD").stdout.strip()
    except LeasefsError as exc:
        typer.echo(f"leasefs: error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"committed {len(verdict.mine)} file(s) of {agent} as {head}: " + ", ".join(verdict.mine)
    )


def register(app: typer.Typer) -> None:
    app.command()(commit)
