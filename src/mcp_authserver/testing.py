"""Helpers for testing an app that embeds mcp-authserver, the way this project tests itself.

- `FakeClock`: pass it as `EmbeddedAuthServer(..., clock=clock)` and move time by hand, so expiry
  is tested without sleeping.
- `running_upstream()`: a development OpenID provider (`oidc-provider-mock`, in the `demo` extra)
  on loopback, to configure as `MCP_AUTHSERVER_UPSTREAM__ISSUER`; any user name logs in.
- `running_app()`: your ASGI app served by uvicorn (in the `demo` extra) on a loopback socket, for
  clients that need a real one (the SDK's); the block starts once uvicorn has started.
- `HeadlessBrowser`: plays the user from an authorization URL to the client's redirect URI:
  approves our consent page and fills in the upstream's login form.
- `HeadlessMCPClient` and `MemoryTokenStorage`: the `mcp` SDK's own OAuth client (2.x) with that
  headless user, and the token storage it keeps. These two live in `integrations/` (the only
  modules that import the SDK) and are imported from there on first use, so importing this module
  needs neither the SDK nor the mock provider.

```python
async def test_my_tool_sees_the_user(my_app_url: str) -> None:
    user = HeadlessMCPClient(HeadlessBrowser("http://127.0.0.1:53682/callback", subject="ann"))
    assert await user.call(my_app_url, "whoami") == {"result": "ann"}
```
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import socket
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from mcp_authserver.integrations.mcp_sdk_client import HeadlessMCPClient, MemoryTokenStorage

__all__ = [
    "FakeClock",
    "HeadlessBrowser",
    "HeadlessMCPClient",
    "MemoryTokenStorage",
    "RunningApp",
    "running_app",
    "running_upstream",
]

_FROM_INTEGRATIONS = {"HeadlessMCPClient", "MemoryTokenStorage"}


def __getattr__(name: str) -> Any:
    """The SDK helpers, imported on first use (they need the `mcp` SDK)."""
    if name in _FROM_INTEGRATIONS:
        from mcp_authserver.integrations import mcp_sdk_client

        return getattr(mcp_sdk_client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class FakeClock:
    """A clock the test moves by hand (`advance`), so expiry is tested without sleeping.

    Starts at the real time (or `start`): tokens it stamps look current to peers that use a real clock.
    """

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start
        """The time it tells, in epoch seconds."""

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock `seconds` ahead."""
        self.now += seconds


@contextlib.contextmanager
def running_upstream(port: int = 0, *, require_registration: bool = False) -> Iterator[str]:
    """A development OpenID provider (`oidc-provider-mock`) on 127.0.0.1; yields its issuer URL.

    `port=0` takes a free port. With `require_registration`, only clients registered with it
    (RFC 7591) may log users in, as at an upstream that this server must register itself with.
    Raises `ModuleNotFoundError` naming the extra to install when the mock is missing.
    """
    try:
        # authlib (under the mock) forces its deprecation warnings to show; hide that one.
        import authlib.deprecate

        warnings.filterwarnings("ignore", category=authlib.deprecate.AuthlibDeprecationWarning)
        from oidc_provider_mock import run_server_in_thread
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"running_upstream needs oidc-provider-mock: pip install 'mcp-authserver[demo]' ({exc})", name=exc.name
        ) from exc
    for name in ("werkzeug", "oidc_provider_mock"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with run_server_in_thread(
        port=port, require_nonce=True, require_client_registration=require_registration
    ) as server:
        yield f"http://localhost:{server.server_port}"


@dataclass(frozen=True)
class RunningApp:
    """An app that `running_app` serves."""

    url: str
    """Its base URL, e.g. `http://127.0.0.1:8000`."""
    port: int
    """The port it listens on."""
    _task: asyncio.Task[None]

    async def stopped(self) -> None:
        """Return when the server stops of itself: on a signal (Ctrl+C, which uvicorn handles) or a crash,
        which this raises."""
        await asyncio.shield(self._task)


@contextlib.asynccontextmanager
async def running_app(
    app: ASGIApp, port: int = 0, *, host: str = "127.0.0.1", sock: socket.socket | None = None, **options: Any
) -> AsyncIterator[RunningApp]:
    """Serve the ASGI `app` with uvicorn on `host:port` (`port=0` takes a free one) for the duration of the
    block, which starts once uvicorn has started: the app's lifespan has run its startup and the socket
    listens. Leaving the block shuts the server down.

    `sock`: a socket bound already, served instead of `host:port`, so that settings made before the app
    (its issuer URL) can name the port without a race for it. `options` go to `uvicorn.Config`; by default
    `log_level="warning"` and `lifespan="on"`. If the app's startup fails, or the port cannot be bound, this
    raises RuntimeError rather than waiting. Needs uvicorn (the `demo` extra).
    """
    import uvicorn

    started = asyncio.Event()

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:  # uvicorn returns, set to exit, when the app's startup failed
                started.set()

    server = Server(uvicorn.Config(app, host=host, port=port, **{"log_level": "warning", "lifespan": "on", **options}))

    async def serve() -> None:
        try:
            await server.serve(sockets=None if sock is None else [sock])
        except SystemExit as exc:  # how uvicorn gives up when the app's startup or the binding fails
            raise RuntimeError(f"uvicorn could not serve the app (exit status {exc.code}); its log says why") from None

    task = asyncio.create_task(serve())
    waiting = asyncio.create_task(started.wait())
    try:
        await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if not started.is_set():
            task.result()
            raise RuntimeError("uvicorn stopped before it served the app")
        bound: int = (sock.getsockname() if sock is not None else server.servers[0].sockets[0].getsockname())[1]
        name = f"[{host}]" if ":" in host else host
        yield RunningApp(f"http://{name}:{bound}", bound, task)
    finally:
        waiting.cancel()
        server.should_exit = True
        await task


class HeadlessBrowser:
    """Plays the user: follows redirects, approves our consent page, logs in at the upstream's form.

    Stops at the client's redirect URI and returns its query parameters (nothing listens there).
    On a login form with a `sub` field (the development provider's) it types `subject`; on any other
    page it submits the first form as it is. `transport` routes the requests (an in-process ASGI
    app, say); by default they go over the network.
    """

    def __init__(
        self, redirect_uri: str, subject: str = "alice@example.com", transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.redirect_uri = redirect_uri
        """The client's redirect URI: where the walk stops."""
        self.subject = subject
        """The user name typed into the development provider's login form."""
        self.transport = transport
        """Where requests go; None: over the network."""

    async def walk(self, url: str) -> dict[str, str]:
        """Follow a login from `url` (an authorization URL) to the redirect URI; return its query parameters.

        Raises RuntimeError when a page has no form to submit, or after 20 steps.
        """
        async with httpx.AsyncClient(follow_redirects=False, timeout=10, transport=self.transport) as browser:
            response = await browser.get(url)
            for _ in range(20):
                if response.is_redirect:
                    url = urljoin(url, response.headers["location"])
                    if url.startswith(self.redirect_uri):
                        return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
                    response = await browser.get(url)
                    continue
                form = _pick_form(response.text)
                if form is None:
                    raise RuntimeError(f"stuck at {url}: {response.status_code} {response.text[:200]}")
                action, fields = form
                if "sub" in fields or 'name="sub"' in response.text:
                    fields = {"sub": self.subject}
                url = urljoin(url, action) if action else url
                response = await browser.post(url, data=fields)
        raise RuntimeError("too many steps")


def _pick_form(page: str) -> tuple[str, dict[str, str]] | None:
    """The approve form of our consent page, or the first form of any other page."""
    forms = re.findall(r"<form([^>]*)>(.*?)</form>", page, flags=re.S)
    if not forms:
        return None
    chosen = next((f for f in forms if 'value="approve"' in f[1]), forms[0])
    action = re.search(r'action="([^"]*)"', chosen[0])
    fields = {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'name="([^"]+)"[^>]*value="([^"]*)"', chosen[1])
    }
    return (html.unescape(action.group(1)) if action else "", fields)
