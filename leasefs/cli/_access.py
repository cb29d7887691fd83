"""`leasefs invite`, `join`, `members`, `revoke`: who belongs to a workspace.

An admin invites; the invited machine joins with the printed line, which stores a member
credential for this user (0600); mounts and MCP sessions then register with it by themselves.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

import trio
import typer

from .._client import Client, LeasefsError, acting_client, resolve_identity
from .._config import (
    SettingsError,
    _credentials,
    default_agent_name,
    repository_of,
    write_repo_settings,
)
from ..wire import MemberInfo

CoordinatorOption = Annotated[
    str | None, typer.Option(help="Coordinator URL (default: the mount's, or the configured one).")
]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> float:
    """``90s``, ``30m``, ``24h``, ``7d`` (or plain seconds) as seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise typer.BadParameter(f"a duration is a number and s, m, h or d (24h, 7d): {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"leasefs: error: {exc}", err=True)
    return typer.Exit(1)


def invite(
    role: Annotated[str, typer.Option(help="member, admin or viewer (reads only).")] = "member",
    expires: Annotated[str, typer.Option(help="How long it stays valid: 30m, 24h, 7d.")] = "24h",
    uses: Annotated[int, typer.Option(help="How many machines may join with it.", min=1)] = 1,
    coordinator: CoordinatorOption = None,
) -> None:
    """Invite someone into this repository's workspace (admins only): prints the line they run."""
    if role not in ("member", "admin", "viewer"):
        raise typer.BadParameter(f"--role is member, admin or viewer, not {role!r}")
    expires_s = _duration(expires)

    async def main() -> tuple[str, str, float, int, str]:
        identity = await trio.to_thread.run_sync(resolve_identity, Path.cwd(), coordinator, None)
        async with acting_client(identity, tool="leasefs-cli") as client:
            made = await client.invite(role, expires_s=expires_s, uses=uses)
            return identity.coordinator, made.workspace, made.expires_at, made.uses, made.secret

    try:
        url, workspace, expires_at, count, secret = trio.run(main)
    except LeasefsError as exc:
        raise _fail(exc) from exc
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(expires_at))
    typer.echo(
        f"invitation into {workspace} as {role}, {count} use(s), valid until {until}. "
        "Run this on the machine that joins (the secret is shown only now):"
    )
    typer.echo(f"  leasefs join '{url.rstrip('/')}#{secret}'")


def _split_invitation(invitation: str) -> tuple[str, str]:
    parts = urlsplit(invitation.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or not parts.fragment:
        raise typer.BadParameter(
            "an invitation looks like 'https://HOST:PORT#lfi_…', as `leasefs invite` prints it"
        )
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), parts.fragment


def join(
    invitation: Annotated[
        str | None, typer.Argument(help="The line `leasefs invite` printed: URL#SECRET.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Who joins (default: user@host).")] = None,
    coordinator: CoordinatorOption = None,
    workspace: Annotated[
        str | None, typer.Option(help="With --admin-secret: the workspace to create.")
    ] = None,
    admin_secret: Annotated[
        str | None,
        typer.Option(help="Create --workspace as its owner instead (the coordinator's secret)."),
    ] = None,
    repo: Annotated[
        Path | None,
        typer.Option(
            help="The repository whose leasefs.toml records the coordinator and workspace "
            "(default: the git repository you are in, if any)."
        ),
    ] = None,
    settings: Annotated[
        bool, typer.Option(help="Record them in the repository's leasefs.toml.")
    ] = True,
) -> None:
    """Join a workspace with an invitation (or create one with the admin secret), storing the
    member credential for this user; mounts and MCP sessions then use it by themselves."""
    member = name or default_agent_name()
    if admin_secret is not None:
        if coordinator is None or workspace is None:
            raise typer.BadParameter("--admin-secret needs --coordinator URL and --workspace NAME")
        url = coordinator
    elif invitation is not None:
        url, secret = _split_invitation(invitation)
    else:
        raise typer.BadParameter("give the invitation `leasefs invite` printed")

    async def main() -> _credentials.StoredCredential:
        async with Client(url) as client:
            if admin_secret is not None:
                assert workspace is not None
                made = await client.create_workspace(
                    workspace, admin_secret=admin_secret, owner=member
                )
                if made.credential is None:
                    raise LeasefsError(
                        f"{url} admits every agent openly: there is nothing to join, "
                        f"`leasefs mount --coordinator {url} --workspace {workspace}` is enough"
                    )
                return _credentials.StoredCredential(
                    coordinator=url, workspace=workspace, member=member, role="owner",
                    credential=made.credential,
                )  # fmt: skip
            joined = await client.redeem(secret, member)
            return _credentials.StoredCredential(
                coordinator=url, workspace=joined.workspace, member=joined.member,
                role=joined.role, credential=joined.credential,
            )  # fmt: skip

    target = (repo or repository_of(Path.cwd())) if settings else None
    if target is not None and not target.is_dir():
        raise typer.BadParameter(f"--repo {target} is not a directory")
    try:
        entry = trio.run(main)
        path = _credentials.save(entry)
        recorded = {"coordinator": entry.coordinator, "workspace": entry.workspace}
        replaced = None if target is None else write_repo_settings(target, recorded)
    except (LeasefsError, SettingsError, OSError) as exc:
        raise _fail(exc) from exc
    typer.echo(f"joined {entry.workspace} as {entry.member} ({entry.role}) on {entry.coordinator}")
    typer.echo(f"  the member credential is stored in {path} (mode 0600)")
    if target is None:
        typer.echo(
            f"  mount with: leasefs mount REPO --coordinator {entry.coordinator} "
            f"--workspace {entry.workspace}"
        )
        return
    was = "".join(f"; {name} was {value}" for name, value in (replaced or {}).items())
    typer.echo(f"  coordinator and workspace are recorded in {target / 'leasefs.toml'}{was}")
    typer.echo(f"  mount with: leasefs mount {target}")


def members(coordinator: CoordinatorOption = None) -> None:
    """Who belongs to this repository's workspace: role, agents, last seen."""

    async def main() -> list[MemberInfo]:
        identity = await trio.to_thread.run_sync(resolve_identity, Path.cwd(), coordinator, None)
        async with acting_client(identity, tool="leasefs-cli") as client:
            return await client.members()

    try:
        found = trio.run(main)
    except LeasefsError as exc:
        raise _fail(exc) from exc
    if not found:
        typer.echo("no members: this coordinator admits every local agent (leasefs serve --join)")
    for member in found:
        seen = "never" if member.last_seen is None else _ago(member.last_seen)
        state = " REVOKED" if member.revoked_at else ""
        agents = ", ".join(f"{a.label} ({a.tool})" for a in member.agents) or "no agent now"
        typer.echo(f"{member.id}\t{member.name}\t{member.role}{state}\tlast seen {seen}\t{agents}")


def _ago(at: float) -> str:
    seconds = max(0.0, time.time() - at)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


def revoke(
    member: Annotated[str, typer.Argument(help="The member's name or id (`leasefs members`).")],
    coordinator: CoordinatorOption = None,
) -> None:
    """Retire a member at once (admins only): its agents' next requests fail, their leases go
    to whoever waits, their mounts stop writing."""

    async def main() -> MemberInfo:
        identity = await trio.to_thread.run_sync(resolve_identity, Path.cwd(), coordinator, None)
        async with acting_client(identity, tool="leasefs-cli") as client:
            found = await client.members()
            chosen = [m for m in found if m.name == member or str(m.id) == member]
            if len(chosen) != 1:
                names = ", ".join(f"{m.id} {m.name}" for m in found) or "none"
                raise LeasefsError(f"no single member named {member!r}; members: {names}")
            return await client.revoke(chosen[0].id)

    try:
        done = trio.run(main)
    except LeasefsError as exc:
        raise _fail(exc) from exc
    typer.echo(f"revoked {done.name} ({done.role}): its agents are retired")


def register(app: typer.Typer) -> None:
    for command in (invite, join, members, revoke):
        app.command()(command)
