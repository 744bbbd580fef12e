"""ASGI middleware for the protected MCP endpoint."""
