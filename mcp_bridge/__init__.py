"""The leasefs MCP server (see the MCP bridge issue)."""
