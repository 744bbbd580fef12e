"""Adapters to MCP frameworks: the only modules of the package that import `mcp` or `fastmcp`.

- `mcp_sdk`: the `mcp` SDK (1.x and 2.x): its `TokenVerifier`, and the auth context the bearer
  middleware sets for SDK servers behind `auth.protect` (so `get_access_token()` works in tools).
- `mcp_sdk_client`: the SDK's OAuth client driven headlessly (`mcp_authserver.testing` re-exports it).
- `mcp_sdk_host`: the demo's host app, an SDK server behind `auth.protect`.
- `fastmcp`: an `AuthProvider` for FastMCP's `auth=`.

This package imports nothing on its own, so `import mcp_authserver` never needs `fastmcp`.
Only the composition roots (`server.py`, `demo.py`) and `testing.py` import from here.
"""
