"""The leasefs MCP server: one shared brain for a team of agents (`leasefs mcp`).

The tools live by domain in `mcp_bridge.tools`, each an async function of a `Bridge`.
"""

from leasefs import Identity as Identity
from leasefs import resolve_identity as resolve_identity

from ._bridge import Bridge as Bridge
from ._server import create_server as create_server
from ._server import run as run

__all__ = ["Bridge", "Identity", "create_server", "resolve_identity", "run"]
