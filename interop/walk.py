"""The user of `make interop`'s clients, headless: follows an authorization URL through our consent page
and the mock upstream's login form (`mcp_authserver.testing.HeadlessBrowser`), logging in as `--subject`.

    walk.py URL           then deliver the redirect to the client's redirect URI, as a browser does
                          (mcp-remote's BROWSER, and the conformance suite's user)
    walk.py --print URL   print the query the redirect URI would have received, as JSON, instead
                          (for a client that takes the code from its caller: the SDK clients here)

The redirect URI is the one the URL names. The subject defaults to $INTEROP_SUBJECT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from mcp_authserver.testing import HeadlessBrowser


async def walk(url: str, subject: str, *, deliver: bool) -> dict[str, str]:
    query = parse_qs(urlsplit(url).query)
    if "redirect_uri" not in query:
        raise SystemExit(f"walk.py: no redirect_uri in {url}")
    redirect_uri = query["redirect_uri"][0]
    landed = await HeadlessBrowser(redirect_uri, subject=subject).walk(url)
    if deliver:
        await _deliver(f"{redirect_uri}?{urlencode(landed)}")
    return landed


async def _deliver(url: str) -> None:
    """GET the redirect; a client may still be starting its callback server (the conformance suite
    prints the URL first), so a refused connection is retried for 10 s."""
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(100):
            try:
                response = await client.get(url)
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"nothing listens at the redirect URI {urlsplit(url).netloc}")
        response.raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--print", action="store_true", help="print the redirect's query instead of delivering it")
    parser.add_argument("--subject", default=os.environ.get("INTEROP_SUBJECT", "alice@example.com"))
    args = parser.parse_args()
    landed = asyncio.run(walk(args.url, args.subject, deliver=not args.print))
    outcome = "code" if "code" in landed else f"error={landed.get('error')}"
    print(f"walk.py: logged in as {args.subject}; redirect to the client carried {outcome}", file=sys.stderr)
    if args.print:
        print(json.dumps(landed))
    return 0 if "code" in landed else 1


if __name__ == "__main__":
    sys.exit(main())
