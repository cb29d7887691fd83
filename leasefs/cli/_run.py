"""`leasefs run --agent NAME -- CMD…`: one more agent in an already mounted tree.

Several agents in one working tree (two Claude Code sessions in one folder) are told apart by
process: the mount takes this process and everything it starts as agent NAME, with leases of
its own, exactly as if it had a mount of its own. CMD inherits a marker in its environment
that survives double forks, ``setsid`` and parents that exit first; `leasefs mcp` started
under it acts as the same agent. When CMD exits, the agent's leases go back at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from .._client import ControlError, add_run_agent, end_run
from .._config import RunEnvironment
from ..wire import AddRunAgent
from ._mount import _locate, fail

_FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def run(
    command: Annotated[
        list[str], typer.Argument(help="The command to start as the agent (after --).")
    ],
    agent: Annotated[str, typer.Option(help="The agent it acts as (its name in the team).")],
    tool: Annotated[
        str | None, typer.Option(help="What it is (claude-code, codex…; default: CMD's name).")
    ] = None,
    repo: Annotated[
        Path | None, typer.Option(help="The mounted repository (default: the one you are in).")
    ] = None,
) -> None:
    """Run CMD as another agent inside a mounted tree: its processes get leases of their own
    (EBUSY against the tree's other agents, waits, recalls), as a mount of their own would."""
    record, _ = _locate(repo or Path.cwd())
    socket = Path(record.socket)
    try:
        added = add_run_agent(
            socket,
            AddRunAgent(agent=agent, tool=tool or Path(command[0]).name, root_pid=os.getpid()),
        )
    except ControlError as exc:
        raise fail(f"the mount of {record.repo} did not take agent {agent}: {exc}") from exc
    environment = RunEnvironment(
        marker=added.marker, agent=added.agent, token=added.token, repo=record.repo
    )
    code = _run_as(command, {**os.environ, **environment.variables()})
    try:
        end_run(socket, agent)
    except ControlError as exc:
        typer.echo(f"leasefs: warning: {agent}'s leases were not given back now: {exc}", err=True)
    raise typer.Exit(code)


def _run_as(command: list[str], env: dict[str, str]) -> int:
    """Start ``command`` and wait for it: its exit status (128+N if a signal N ended it).
    Ctrl-C goes to the command from the terminal itself; other signals to us are passed on."""
    try:
        child = subprocess.Popen(command, env=env)
    except OSError as exc:
        typer.echo(f"leasefs: error: cannot start {command[0]}: {exc.strerror}", err=True)
        return 127 if isinstance(exc, FileNotFoundError) else 126

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in _FORWARDED}
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        signal.signal(signal.SIGINT, previous_int)
    return 128 - code if code < 0 else code


def register(app: typer.Typer) -> None:
    app.command(
        context_settings={"allow_interspersed_args": False},
        no_args_is_help=True,
    )(run)
