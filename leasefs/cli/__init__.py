"""Layer 3: the ``leasefs`` command line, one module per command group.

The only place that imports `coordinator` (``leasefs serve``) and `mcp_bridge` (``leasefs mcp``).
"""

from ._app import app as app
from ._app import main as main

__all__ = [
    "app",
    "main",
]
