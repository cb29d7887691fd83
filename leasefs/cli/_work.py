"""`leasefs finish` and `leasefs tracker`: hand-offs for agents and people without MCP."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import trio
import typer

from .._client import ControlError, LeasefsError, acting_client, release_now, resolve_identity
from .._config import run_checks
from ..wire import Handoff
from . import _tracker


def finish(
    summary: Annotated[str, typer.Option(help="What was done.")],
    check: Annotated[
        bool, typer.Option("--check", help="Run the [checks] of leasefs.toml first.")
    ] = False,
    next_step: Annotated[
        list[str] | None, typer.Option("--next", help="A next step (repeatable).")
    ] = None,
    work: Annotated[
        int | None, typer.Option(help="The work session (default: your latest active one).")
    ] = None,
    coordinator: Annotated[str | None, typer.Option(help="Coordinator URL.")] = None,
) -> None:
    """Finish your work session with a hand-off (optionally after the build and test checks) and
    release your leases."""

    async def main() -> int:
        identity = await trio.to_thread.run_sync(resolve_identity, Path.cwd(), coordinator, None)
        async with acting_client(identity, tool="leasefs-cli") as client:
            assert client.agent is not None
            chosen = work
            if chosen is None:
                mine = [
                    w for w in await client.list_work(["active"]) if w.owner.id == client.agent.id
                ]
                if not mine:
                    raise LeasefsError(f"{client.agent.name} has no active work session to finish")
                chosen = mine[0].id
            checks = await run_checks(identity.repo) if check and identity.repo else []
            for result in checks:
                verdict = "passed" if result.passed else f"FAILED (exit {result.exit_code})"
                typer.echo(f"check {result.name}: {result.command} -> {verdict}")
                if not result.passed:
                    typer.echo(result.output_tail[-1500:])
            handoff = Handoff(summary=summary, next_steps=next_step or [], checks=checks)
            done = await client.finish_work(chosen, handoff)
            released: list[str] = []
            if identity.mount_socket is not None:
                socket = identity.mount_socket
                released = await trio.to_thread.run_sync(release_now, socket)
            typer.echo(f"work {done.id} ({done.title}) finished; {len(released)} lease(s) released")
            return 1 if any(not c.passed for c in checks) else 0

    try:
        code = trio.run(main)
    except (LeasefsError, ControlError) as exc:
        typer.echo(f"leasefs: error: {exc}", err=True)
        raise typer.Exit(1) from exc
    raise typer.Exit(code)


def tracker(
    output: Annotated[
        str, typer.Option(help="Where to write the Markdown; '-' for stdout.")
    ] = "HANDOFF.md",
    as_json: Annotated[bool, typer.Option("--json", help="The briefing as JSON instead.")] = False,
    coordinator: Annotated[str | None, typer.Option(help="Coordinator URL.")] = None,
) -> None:
    """Write the team's briefing as a Markdown hand-off file (AgentTracker style)."""

    async def main() -> str:
        identity = await trio.to_thread.run_sync(resolve_identity, Path.cwd(), coordinator, None)
        async with acting_client(identity, tool="leasefs-cli") as client:
            briefing = await client.briefing()
        if as_json:
            return json.dumps(briefing.model_dump(), indent=2)
        return _tracker.render(briefing)

    try:
        text = trio.run(main)
    except LeasefsError as exc:
        typer.echo(f"leasefs: error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if output == "-":
        typer.echo(text, nl=False)
        return
    tmp = f"{output}.tmp-{os.getpid()}"
    Path(tmp).write_text(text)
    os.replace(tmp, output)
    typer.echo(f"wrote {output}")
