"""Benchmarks for mcp-authserver: `python -m benchmarks` (or `make bench`).

Everything is driven in process through hand-built ASGI scopes: no network, no HTTP client, so
the figures measure the library and the framework around it, not a socket. The run ends by
printing one JSON object with every figure on the last line of stdout.
"""
