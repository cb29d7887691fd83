"""The `leasefs` command line."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import trio
import typer

from .. import wire
from .._client import LeasefsError, _embedded
from .._config import _settings
from . import _access as _access_cli
from . import _backup as _backup_cli
from . import _commit as _commit_cli
from . import _mount as _mount_cli
from . import _run as _run_cli
from . import _work as _work_cli
from ._zone import zone_app

app = typer.Typer(
    name="leasefs",
    help="Edit-time leases for teams of AI coding agents sharing one codebase.",
    no_args_is_help=True,
    add_completion=False,
)
coordinator_app = typer.Typer(
    help="The embedded local coordinator (used when no coordinator URL is configured).",
    no_args_is_help=True,
)
app.add_typer(coordinator_app, name="coordinator")
_mount_cli.register(app)
_access_cli.register(app)
_run_cli.register(app)
_commit_cli.register(app)
_backup_cli.register(app)
app.add_typer(zone_app, name="zone")
app.command()(_work_cli.finish)
app.command()(_work_cli.tracker)


@app.callback()
def _root(
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Talk plain http to a coordinator on another machine anyway (tokens and code "
            "cross the network unencrypted): only on a network you trust.",
        ),
    ] = False,
) -> None:
    """Edit-time leases for teams of AI coding agents sharing one codebase."""
    if insecure:  # read by every client this process and its mount daemons make
        os.environ["LEASEFS_INSECURE"] = "1"


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on; keep loopback unless agents are remote.")
    ] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(
            help="Port to listen on; 0 picks a free one.", show_default=str(wire.DEFAULT_PORT)
        ),
    ] = None,
    data: Annotated[Path | None, typer.Option(help="Directory for the database and blobs.")] = None,
    max_blob_bytes: Annotated[
        int | None,
        typer.Option(
            help="Largest snapshot blob accepted, in bytes.",
            min=1,
            show_default=str(wire.MAX_BLOB_BYTES),
        ),
    ] = None,
    max_json_bytes: Annotated[
        int | None,
        typer.Option(
            help="Largest JSON request body accepted, in bytes.",
            min=1024,
            show_default=str(wire.MAX_JSON_BYTES),
        ),
    ] = None,
    max_leases_per_agent: Annotated[
        int | None,
        typer.Option(
            help="Most leases one agent may hold at once.",
            min=1,
            show_default=str(wire.MAX_LEASES_PER_AGENT),
        ),
    ] = None,
    rate_limit: Annotated[
        float | None,
        typer.Option(
            help="Requests per second per agent (bursts of twice that pass); 0: off.",
            min=0.0,
            show_default=f"{wire.RATE_LIMIT_PER_S:g}",
        ),
    ] = None,
    break_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds a holder may keep a lease another agent waits for.",
            min=0.0,
            show_default=f"{wire.BREAK_TIMEOUT_S:g}",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="PEM certificate (chain) to serve https with.")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Serve plain http on an address other machines can reach (agents' tokens and "
            "code then cross the network unencrypted): only on a network you trust.",
        ),
    ] = False,
    join: Annotated[
        str | None,
        typer.Option(
            help="Who may come in: 'open' (every agent, as admin) or 'invite' (an admin "
            "secret creates workspaces, invitations admit members). Default: open on "
            "loopback only, invite on any other address.",
        ),
    ] = None,
    state_file: Annotated[Path | None, typer.Option(hidden=True)] = None,
) -> None:
    """Run the coordinator in the foreground until Ctrl-C or SIGTERM."""
    from coordinator import Limits, ServeOptions
    from coordinator import serve as run_coordinator

    if (tls_cert is None) != (tls_key is None):
        typer.echo("leasefs: --tls-cert and --tls-key go together", err=True)
        raise typer.Exit(2)
    for pem in (tls_cert, tls_key):
        if pem is not None and not pem.is_file():
            typer.echo(f"leasefs: no such file: {pem}", err=True)
            raise typer.Exit(2)
    if join not in (None, "open", "invite"):
        typer.echo(f"leasefs: --join is 'open' or 'invite', not {join!r}", err=True)
        raise typer.Exit(2)
    if join == "open" and not wire.is_loopback_host(host):
        typer.echo(
            f"leasefs: refusing --join open on {host}: anyone who reaches it could join any "
            "workspace and push code into every mount; serve on 127.0.0.1, or admit by "
            "invitation (the default there)",
            err=True,
        )
        raise typer.Exit(2)
    if tls_cert is None and not wire.is_loopback_host(host):
        if not insecure:
            typer.echo(
                f"leasefs: refusing to serve plain http on {host}: other machines could reach "
                "it, and every agent's token and the team's code would cross the network "
                "unencrypted. Give --tls-cert CERT.pem --tls-key KEY.pem (see the README's "
                '"Several machines"), or --insecure on a network you trust.',
                err=True,
            )
            raise typer.Exit(2)
        typer.echo(
            f"leasefs: WARNING: serving plain http on {host} (--insecure): tokens and code "
            "cross the network unencrypted; clients must be told leasefs --insecure too.",
            err=True,
        )
    data = data or _settings.default_data_dir() / "coordinator"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        limits = Limits(
            max_blob_bytes=int(_settings.resolve("max_blob_bytes", max_blob_bytes)),
            max_json_bytes=int(_settings.resolve("max_json_bytes", max_json_bytes)),
            max_leases_per_agent=int(
                _settings.resolve("max_leases_per_agent", max_leases_per_agent)
            ),
            rate_per_s=float(_settings.resolve("rate_limit", rate_limit)),
            break_timeout_s=float(_settings.resolve("break_timeout", break_timeout)),
        )
        port = int(_settings.resolve("port", port))
    except _settings.SettingsError as exc:
        typer.echo(f"leasefs: {exc}", err=True)
        raise typer.Exit(2) from exc
    options = ServeOptions(
        data_dir=data,
        host=host,
        port=port,
        limits=limits,
        tls_cert=tls_cert,
        tls_key=tls_key,
        open_admission=None if join is None else join == "open",
    )

    def ready(url: str) -> None:
        print(f"leasefs coordinator listening on {url} (data in {data})", flush=True)
        if state_file is not None:
            _embedded.write_state(state_file, url)

    try:
        trio.run(run_coordinator, options, ready)
    except OSError as exc:
        typer.echo(f"leasefs: cannot serve on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        pass
    finally:
        if state_file is not None:
            state_file.unlink(missing_ok=True)


@coordinator_app.command("start")
def coordinator_start() -> None:
    """Start the embedded coordinator unless it runs already; print its URL."""
    try:
        running = _embedded.ensure_running()
    except LeasefsError as exc:
        typer.echo(f"leasefs: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{running.url}  (pid {running.pid}, log {running.log_path})")


@coordinator_app.command("status")
def coordinator_status() -> None:
    """Say whether the embedded coordinator runs, and where."""
    running = _embedded.read_state()
    if running is None:
        typer.echo("the embedded coordinator is not running")
        raise typer.Exit(1)
    typer.echo(f"{running.url}  (pid {running.pid}, log {running.log_path})")


@coordinator_app.command("stop")
def coordinator_stop() -> None:
    """Stop the embedded coordinator (leases it granted stay recorded; they run out by TTL)."""
    try:
        stopped = _embedded.stop()
    except LeasefsError as exc:
        typer.echo(f"leasefs: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo("stopped" if stopped else "the embedded coordinator was not running")


@app.command()
def mcp(
    coordinator: Annotated[
        str | None,
        typer.Option(help="Coordinator URL (default: the mount's, or the embedded one)."),
    ] = None,
    agent: Annotated[str | None, typer.Option(help="Agent name when not inside a mount.")] = None,
) -> None:
    """Serve the leasefs MCP tools on stdin/stdout (inside a mount: as that mount's agent)."""
    from pathlib import Path

    from mcp_bridge import resolve_identity, run

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    try:
        identity = resolve_identity(Path.cwd(), coordinator, agent)
    except LeasefsError as exc:
        typer.echo(f"leasefs: error: {exc}", err=True)
        raise typer.Exit(1) from exc
    run(identity)


@app.command()
def install(
    scope: Annotated[
        str, typer.Option(help="user: each client's own config; project: this repository's.")
    ] = "user",
    dry_run: Annotated[bool, typer.Option(help="Say what would change; change nothing.")] = False,
    rules: Annotated[
        bool, typer.Option(help="Also add the working rules to AGENTS.md / CLAUDE.md.")
    ] = False,
) -> None:
    """Add the leasefs MCP server to every installed agent and IDE (idempotent, with backups)."""
    from . import _install

    if scope not in ("user", "project"):
        typer.echo("leasefs: error: --scope is user or project", err=True)
        raise typer.Exit(2)
    repo = Path.cwd()
    changes = _install.install(scope=scope, home=Path.home(), repo=repo, dry_run=dry_run)  # type: ignore[arg-type]
    if rules:
        changes += _install.add_rules(repo, dry_run=dry_run)
    typer.echo(("(dry run) " if dry_run else "") + _install.describe(changes))


@app.command()
def uninstall(
    rules: Annotated[
        bool, typer.Option(help="Also remove the working rules from AGENTS.md / CLAUDE.md.")
    ] = False,
) -> None:
    """Remove exactly what `leasefs install` added (the original files come back when unchanged)."""
    from . import _install

    changes = _install.uninstall()
    if rules:
        changes += _install.remove_rules(Path.cwd())
    typer.echo(_install.describe(changes))


@app.command()
def demo() -> None:
    """Show the whole story in about ten seconds: two agents, one file, nothing lost."""
    from ._demo import DemoFailed, run_demo

    try:
        run_demo()
    except (DemoFailed, LeasefsError, OSError) as exc:
        typer.echo(f"leasefs demo failed: {exc}", err=True)
        raise typer.Exit(1) from exc


def main() -> None:
    app(prog_name="leasefs")
