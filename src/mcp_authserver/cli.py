"""The `mcp-authserver` command: `demo`, `keys generate`, `check`."""

from __future__ import annotations

import argparse
import base64
import secrets
import sys

from mcp_authserver.errors import ConfigurationError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcp-authserver", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo_parser = commands.add_parser("demo", help="run the demo host app with a mock upstream provider")
    demo_parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    demo_parser.add_argument("--port", type=int, default=8000, help="port of the host app (default 8000)")
    demo_parser.add_argument("--upstream-port", type=int, default=8001, help="port of the mock OpenID provider")
    demo_parser.add_argument("--check", action="store_true", help="log in with the mcp SDK client and exit")
    keys = commands.add_parser("keys", help="signing keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    generate = keys_commands.add_parser("generate", help="print a new PEM private key")
    generate.add_argument("--alg", choices=["ES256", "RS256", "EdDSA"], default="ES256")
    keys_commands.add_parser("encryption-key", help="print a new AES-256 key for MCP_AUTHSERVER_ENCRYPTION__KEYS")
    check = commands.add_parser("check", help="validate the MCP_AUTHSERVER_* settings and print a summary")
    check.add_argument(
        "--probe",
        action="store_true",
        help="also load the signing keys, ping the storage and fetch the upstream's metadata (exit 1 if any fails)",
    )

    args = parser.parse_args(argv)
    if args.command == "demo":
        try:
            from mcp_authserver import demo  # needs the "demo" extra and mcp 2.x
        except ImportError as exc:
            print(f"the demo needs: pip install 'mcp-authserver[demo]' ({exc})", file=sys.stderr)
            return 2
        return demo.main(args)
    if args.command == "keys":
        if args.keys_command == "encryption-key":
            sys.stdout.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
            return 0
        from mcp_authserver.tokens.keys import SigningKey

        sys.stdout.write(SigningKey.generate(args.alg).to_pem().decode())
        return 0
    return _check(probe=args.probe)


def _check(*, probe: bool) -> int:
    """Exit 2 for invalid settings, 1 when a probe fails: a deployment script can tell the two apart."""
    from mcp_authserver.settings import AuthServerSettings

    try:
        settings = AuthServerSettings()  # read from the environment
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"issuer    {settings.issuer}")
    print(f"resource  {settings.resource}")
    print(f"upstream  {settings.upstream.issuer or settings.upstream.authorization_endpoint}")
    print(f"storage   {settings.storage.redacted_url}")
    if not probe:
        return 0
    import asyncio

    from mcp_authserver.probe import probe as run_probes

    results = asyncio.run(run_probes(settings))
    for result in results:
        print(result.line)
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
