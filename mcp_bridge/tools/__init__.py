"""The MCP tools by domain, each a plain async function of the session's `Bridge`.

A tool takes the bridge first and its MCP parameters after, and returns its pydantic result,
so a test can call it directly; `mcp_bridge._server` binds the bridge, names it
``leasefs_<function>`` and turns coordinator refusals into tool errors.

Tool modules do not postpone their annotations (no ``from __future__ import annotations``):
the SDK reads each parameter's real type, default and ``Field`` to publish its schema.
"""

from typing import Annotated

from pydantic import Field

PathList = Annotated[list[str], Field(description="Repository-relative paths, '/'-separated.")]
