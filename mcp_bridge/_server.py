"""The leasefs MCP server: team state, work sessions, leases, memory and messages as tools.

Every tool is a thin wrapper over the typed client; every answer is a pydantic model, so the
model reads JSON text and the client gets structured content. Coordinator refusals become
tool errors with the coordinator's sentence, never a crash.

(No ``from __future__ import annotations`` here: the SDK reads the tools' annotations, and a
resolver named in one is a local function it could not find from a string.)
"""

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar, get_args, get_origin

import anyio
from mcp.server import MCPServer
from mcp.server.elicitation import AcceptedElicitation, CancelledElicitation, ElicitationResult
from mcp.server.mcpserver import Context, Elicit, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.subscriptions import InMemorySubscriptionBus
from pydantic import BaseModel, Field, ValidationError

import leasefs
from leasefs import Identity, LeasefsError, resolve_identity
from leasefs.wire import (
    Thread,
    Zone,
    specs_overlap,
)

from ._bridge import INBOX_URI, Bridge
from ._results import (
    Threads,
    ZoneConfirmed,
    ZoneQuestion,
)
from .tools import leases, memory, team, work

_Tool = Callable[..., Awaitable[BaseModel]]

_BEFORE_MESSAGES: tuple[_Tool, ...] = (
    team.briefing, team.check,
    work.start, work.finish, work.park, work.resume, work.cancel, work.inspect,
    leases.lease_acquire, leases.lease_wait,
    memory.remember, memory.forget, memory.recall, memory.context, memory.context_update,
)  # fmt: skip

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

    def tool(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        wrapped = _refusals_as_tool_errors(fn)
        server.add_tool(wrapped, name=f"leasefs_{fn.__name__}", description=fn.__doc__)
        return wrapped

    def register(fn: Callable[..., Awaitable[BaseModel]]) -> None:
        bound = _refusals_as_tool_errors(_bind(fn, bridge))
        server.add_tool(bound, name=f"leasefs_{fn.__name__}", description=_description(fn))

    for fn in _BEFORE_MESSAGES:
        register(fn)

    # -- messages ---------------------------------------------------------------------------

    @tool
    async def ask(
        to: Annotated[str, Field(description="'team', 'agent:<name or id>' or 'work:<id>'.")],
        topic: str,
        question: str,
        paths: list[str] = [],  # noqa: B006
    ) -> Thread:
        """Ask an agent, the owner of a work session, or the whole team. Answers arrive in your
        inbox (and as a notification on the leasefs://inbox resource)."""
        return await bridge.client.ask(to, topic, question, paths)

    @tool
    async def inbox() -> Threads:
        """Threads with messages you have not read yet."""
        return Threads(threads=await bridge.client.inbox())

    @tool
    async def thread(thread_id: int) -> Thread:
        """A whole thread, every message in order."""
        return await bridge.client.thread(thread_id)

    @tool
    async def reply(thread_id: int, body: str, close: bool = False) -> Thread:
        """Answer in a thread; close it if the matter is settled."""
        return await bridge.client.reply(thread_id, body, close=close)

    async def _confirm_zones(path: str) -> list[Zone]:
        return [
            z
            for z in await bridge.client.zones()
            if z.level == "confirm" and specs_overlap(path, z.glob)
        ]

    def _can_ask(ctx: Context) -> bool:
        capabilities = ctx.client_capabilities
        return capabilities is not None and capabilities.elicitation is not None

    async def ask_the_person(
        path: str, ctx: Context
    ) -> Elicit[ZoneQuestion] | CancelledElicitation:
        """The question for the person at the client (asked only where the client can ask)."""
        zones = await _confirm_zones(path)
        if not zones or not _can_ask(ctx):
            return CancelledElicitation()
        name = bridge.client.agent.name if bridge.client.agent else bridge.identity.agent
        reasons = "; ".join(f"{z.glob}: {z.reason}" for z in zones)
        return Elicit(
            f"Agent {name} asks to change {path}, in a protected zone ({reasons}). Allow it?",
            ZoneQuestion,
        )

    @tool
    async def confirm_zone(
        path: Annotated[str, Field(description="The file you need to change.")],
        ctx: Context,
        answer: Annotated[ElicitationResult[ZoneQuestion], Resolve(ask_the_person)],
    ) -> ZoneConfirmed:
        """Ask the person at your client to let you change a file in a zone that needs
        confirmation. Where the client cannot ask, says which command a person can run."""
        name = bridge.client.agent.name if bridge.client.agent else bridge.identity.agent
        if not await _confirm_zones(path):
            raise ToolError(f"no zone needing confirmation covers {path}; nothing to confirm")
        if not _can_ask(ctx):
            raise ToolError(
                "this client cannot ask a person; ask one to run: "
                f"leasefs zone allow {path} --for {name!r}"
            )
        if isinstance(answer, AcceptedElicitation) and answer.data.allow:
            await bridge.client.allow_zone(path, name)
            return ZoneConfirmed(path=path, allowed=True, note=f"{name} may now change {path}")
        return ZoneConfirmed(path=path, allowed=False, note=f"the person said no ({answer.action})")

    register(team.switch_workspace)

    @server.resource(
        INBOX_URI, name="inbox", description="Unread threads; updated as messages arrive."
    )
    async def inbox_resource() -> str:
        unread = (await bridge.client.briefing()).unread  # reading it marks nothing as read
        return Threads(threads=unread).model_dump_json()

    return server


def run(identity: Identity) -> None:
    """Serve MCP on stdin/stdout until the client goes away."""
    import trio

    trio.run(create_server(identity).run_stdio_async)


def default_identity(coordinator: str | None = None, agent: str | None = None) -> Identity:
    return resolve_identity(Path.cwd(), coordinator, agent)
