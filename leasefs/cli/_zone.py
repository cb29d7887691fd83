"""`leasefs zone`: protected zones (warn, confirm, block) and confirmations for agents."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import trio
import typer

from .._client import Client, LeasefsError, acting_client, resolve_identity

zone_app = typer.Typer(
    help="Protected zones: globs whose files warn, need a person's confirmation, or are blocked.",
    no_args_is_help=True,
)

T = TypeVar("T")
CoordinatorOption = Annotated[
    str | None, typer.Option(help="Coordinator URL (default: the mount's, or the configured one).")
]


def _run(coordinator: str | None, action: Callable[[Client], Awaitable[T]]) -> T:
    async def main() -> T:
        identity = await trio.to_thread.run_sync(resolve_identity, Path.cwd(), coordinator, None)
        async with acting_client(identity, tool="leasefs-cli") as client:
            return await action(client)

    try:
        return trio.run(main)
    except LeasefsError as exc:
        typer.echo(f"leasefs: error: {exc}", err=True)
        raise typer.Exit(1) from exc


@zone_app.command("add")
def zone_add(
    glob: Annotated[str, typer.Argument(help="Files of the zone, e.g. 'migrations/**'.")],
    level: Annotated[Literal["warn", "confirm", "block"], typer.Option(help="What a write meets.")],
    reason: Annotated[str, typer.Option(help="Why: shown to every agent refused or warned.")],
    coordinator: CoordinatorOption = None,
) -> None:
    """Protect GLOB: warn (allowed, recorded), confirm (refused until allowed), block (refused)."""
    zone = _run(coordinator, lambda c: c.add_zone(glob, level, reason))
    typer.echo(f"zone {zone.id}: {zone.glob} [{zone.level}] {zone.reason}")


@zone_app.command("list")
def zone_list(coordinator: CoordinatorOption = None) -> None:
    """The workspace's zones."""
    zones = _run(coordinator, lambda c: c.zones())
    if not zones:
        typer.echo("no zones")
    for zone in zones:
        typer.echo(f"{zone.id}\t{zone.level}\t{zone.glob}\t{zone.reason}")


@zone_app.command("rm")
def zone_rm(zone_id: int, coordinator: CoordinatorOption = None) -> None:
    """Remove zone ZONE_ID."""
    _run(coordinator, lambda c: c.remove_zone(zone_id))
    typer.echo(f"zone {zone_id} removed")


@zone_app.command("allow")
def zone_allow(
    path: Annotated[str, typer.Argument(help="The file (or glob) to allow, repository-relative.")],
    agent: Annotated[
        str, typer.Option("--for", help="The agent's name, as `leasefs status` shows.")
    ],
    coordinator: CoordinatorOption = None,
) -> None:
    """Confirm: agents named AGENT may change PATH in confirm zones."""
    _run(coordinator, lambda c: c.allow_zone(path, agent))
    typer.echo(f"{agent} may now change {path}")
