"""Plays the user for the conformance suite: consent, upstream login, then hands the code to its callback."""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import urlencode

import httpx

from mcp_authserver.testing import HeadlessBrowser

CALLBACK = "http://127.0.0.1:3000/callback"


async def walk(url: str) -> None:
    landed = await HeadlessBrowser(CALLBACK).walk(url)
    async with httpx.AsyncClient() as client:
        await client.get(f"{CALLBACK}?{urlencode(landed)}")


if __name__ == "__main__":
    asyncio.run(walk(sys.argv[1]))
