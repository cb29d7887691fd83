"""The leasefs MCP server: one shared brain for a team of agents (`leasefs mcp`)."""

from leasefs import Identity as Identity
from leasefs import resolve_identity as resolve_identity

from ._server import create_server as create_server
from ._server import run as run

__all__ = ["Identity", "create_server", "resolve_identity", "run"]
