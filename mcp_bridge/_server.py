"""The leasefs MCP server: the tools of `mcp_bridge.tools` assembled over one session's Bridge.

Every tool is a thin function of the typed client; every answer is a pydantic model, so the
model reads JSON text and the client gets structured content. Here each tool gets the
session's bridge bound, its ``leasefs_`` name, and coordinator refusals turned into tool
errors with the coordinator's sentence, never a crash.
"""

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar, get_args, get_origin

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.subscriptions import InMemorySubscriptionBus
from pydantic import BaseModel, ValidationError

import leasefs
from leasefs import Identity, LeasefsError, resolve_identity

from ._bridge import INBOX_URI, Bridge
from .tools import leases, memory, messages, team, work, zones

P = ParamSpec("P")
R = TypeVar("R")

INSTRUCTIONS = """\
leasefs coordinates several agents editing one repository. Call leasefs_briefing at the start
of a session. Declare your work with leasefs_start (optionally leasing the files first), and
end it with leasefs_finish (summary, next steps, decisions) or leasefs_park so another agent
can resume it. A write that fails with EBUSY ("Device or resource busy") means another agent
holds that file: call leasefs_check to see who and why, work on something else, ask them with
leasefs_ask, or wait for it with leasefs_lease_wait. Share lasting knowledge with
leasefs_remember; read the project's context document with leasefs_context."""

TOOLS: tuple[Callable[..., Awaitable[BaseModel]], ...] = (
    team.briefing, team.check,
    work.start, work.finish, work.park, work.resume, work.cancel, work.inspect,
    leases.lease_acquire, leases.lease_wait,
    memory.remember, memory.forget, memory.recall, memory.context, memory.context_update,
    messages.ask, messages.inbox, messages.thread, messages.reply,
    zones.confirm_zone,
    team.switch_workspace,
)  # fmt: skip
"""Every tool, in the order clients list them; each is served as ``leasefs_<its name>``."""


def create_server(identity: Identity) -> MCPServer[Any]:
    bridge = Bridge(identity)
    bus = InMemorySubscriptionBus()

    @asynccontextmanager
    async def lifespan(_server: MCPServer[Any]) -> AsyncIterator[Bridge]:
        await bridge.connect()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(bridge.watch_messages, bus)
            try:
                yield bridge
            finally:
                tasks.cancel_scope.cancel()
                await bridge.client.aclose()

    server: MCPServer[Any] = MCPServer(
        "leasefs",
        instructions=INSTRUCTIONS,
        version=leasefs.__version__,
        lifespan=lifespan,
        subscriptions=bus,
    )
    for fn in TOOLS:
        server.add_tool(
            _refusals_as_tool_errors(_bind(fn, bridge)),
            name=f"leasefs_{fn.__name__}",
            description=_description(fn),
        )

    @server.resource(
        INBOX_URI, name="inbox", description="Unread threads; updated as messages arrive."
    )
    async def inbox_resource() -> str:
        return (await messages.unread(bridge)).model_dump_json()

    return server


def _refusals_as_tool_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except LeasefsError as exc:
            raise ToolError(str(exc)) from exc
        except ValidationError as exc:  # arguments the coordinator's models refuse
            reasons = "; ".join(
                f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" if e["loc"] else e["msg"]
                for e in exc.errors()
            )
            raise ToolError(f"invalid arguments: {reasons}") from exc

    return wrapper


def _bind(fn: Callable[..., Awaitable[R]], bridge: Bridge) -> Callable[..., Awaitable[R]]:
    """``fn`` with the session's bridge as its first argument, showing a signature without it:
    the SDK builds a tool's schema, and a resolver's plan, from the signature it sees. A
    resolver named in a parameter (``Resolve(f)``) gets the same bridge."""
    signature = inspect.signature(fn)
    first, *rest = signature.parameters.values()
    if first.name != "bridge":
        raise TypeError(f"{fn.__qualname__} must take the bridge as its first parameter")
    params = [p.replace(annotation=_bind_resolvers(p.annotation, bridge)) for p in rest]
    if any(isinstance(p.annotation, str) for p in params):
        raise TypeError(f"{fn.__qualname__}: the SDK needs real annotations, not strings")

    @functools.wraps(fn)
    async def bound(*args: Any, **kwargs: Any) -> R:
        return await fn(bridge, *args, **kwargs)

    bound.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    bound.__annotations__ = {p.name: p.annotation for p in params if p.annotation is not p.empty}
    if signature.return_annotation is not signature.empty:
        bound.__annotations__["return"] = signature.return_annotation
    return bound


def _bind_resolvers(annotation: Any, bridge: Bridge) -> Any:
    """``Annotated[T, Resolve(f)]`` with ``f`` bound to the bridge; any other annotation as is."""
    if get_origin(annotation) is not Annotated:
        return annotation
    base, *metadata = get_args(annotation)
    if not any(isinstance(m, Resolve) for m in metadata):
        return annotation
    metadata = [Resolve(_bind(m.fn, bridge)) if isinstance(m, Resolve) else m for m in metadata]
    return Annotated.__class_getitem__((base, *metadata))


def _description(fn: Callable[..., object]) -> str:
    """The tool's docstring as clients have always read it: its lines after the first indented
    by eight spaces, as they were when the tools were closures inside `create_server`."""
    first, *rest = inspect.cleandoc(fn.__doc__ or "").splitlines() or [""]
    return "\n".join([first, *(f"        {line}" if line else line for line in rest)])


def run(identity: Identity) -> None:
    """Serve MCP on stdin/stdout until the client goes away."""
    import trio

    trio.run(create_server(identity).run_stdio_async)


def default_identity(coordinator: str | None = None, agent: str | None = None) -> Identity:
    return resolve_identity(Path.cwd(), coordinator, agent)
