"""Protected zones: a file in a zone that needs confirmation is changed only after a person
says yes. The tool asks the person at the client (an MCP elicitation), or, where the client
cannot ask, names the command a person can run."""

from typing import Annotated

from mcp.server.elicitation import AcceptedElicitation, CancelledElicitation, ElicitationResult
from mcp.server.mcpserver import Context, Elicit, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from leasefs.wire import Zone, specs_overlap

from .._bridge import Bridge
from .._results import ZoneConfirmed, ZoneQuestion


async def zones_to_confirm(bridge: Bridge, path: str) -> list[Zone]:
    """The zones needing confirmation that cover ``path``."""
    return [
        z
        for z in await bridge.client.zones()
        if z.level == "confirm" and specs_overlap(path, z.glob)
    ]


def can_ask(ctx: Context) -> bool:
    """Whether the client can put a question to its person (it declared elicitation)."""
    capabilities = ctx.client_capabilities
    return capabilities is not None and capabilities.elicitation is not None


async def question(
    bridge: Bridge, path: str, *, client_can_ask: bool
) -> Elicit[ZoneQuestion] | CancelledElicitation:
    """The question for the person, or no question (cancelled) where there is nothing to ask
    about or nobody to ask."""
    zones = await zones_to_confirm(bridge, path)
    if not zones or not client_can_ask:
        return CancelledElicitation()
    reasons = "; ".join(f"{z.glob}: {z.reason}" for z in zones)
    return Elicit(
        f"Agent {_name(bridge)} asks to change {path}, in a protected zone ({reasons}). Allow it?",
        ZoneQuestion,
    )


async def settle(
    bridge: Bridge,
    path: str,
    answer: ElicitationResult[ZoneQuestion],
    *,
    client_can_ask: bool,
) -> ZoneConfirmed:
    """Record the person's yes with the coordinator; refuse where there was nothing to confirm
    or nobody to ask."""
    name = _name(bridge)
    if not await zones_to_confirm(bridge, path):
        raise ToolError(f"no zone needing confirmation covers {path}; nothing to confirm")
    if not client_can_ask:
        raise ToolError(
            "this client cannot ask a person; ask one to run: "
            f"leasefs zone allow {path} --for {name!r}"
        )
    if isinstance(answer, AcceptedElicitation) and answer.data.allow:
        await bridge.client.allow_zone(path, name)
        return ZoneConfirmed(path=path, allowed=True, note=f"{name} may now change {path}")
    return ZoneConfirmed(path=path, allowed=False, note=f"the person said no ({answer.action})")


async def ask_the_person(
    bridge: Bridge, path: str, ctx: Context
) -> Elicit[ZoneQuestion] | CancelledElicitation:
    """The question for the person at the client (asked only where the client can ask)."""
    return await question(bridge, path, client_can_ask=can_ask(ctx))


async def confirm_zone(
    bridge: Bridge,
    path: Annotated[str, Field(description="The file you need to change.")],
    ctx: Context,
    answer: Annotated[ElicitationResult[ZoneQuestion], Resolve(ask_the_person)],
) -> ZoneConfirmed:
    """Ask the person at your client to let you change a file in a zone that needs
    confirmation. Where the client cannot ask, says which command a person can run."""
    return await settle(bridge, path, answer, client_can_ask=can_ask(ctx))


def _name(bridge: Bridge) -> str:
    return bridge.client.agent.name if bridge.client.agent else bridge.identity.agent
