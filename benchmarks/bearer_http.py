"""Figure 1 over HTTP, the issue's method: requests/s through uvicorn, behind a bearer middleware, over bare.

The three apps of `benchmarks.bearer` (bare, ours = `auth.protect(bare)`, sdk = `sdk_protect(bare, auth)`)
are served by one uvicorn server in a separate process, pinned to CPU 0, under /bare, /ours and /sdk: a
tiny raw ASGI app picks the app by a dict lookup on the path and calls it with the path `/mcp`, so the
three differ only by their middleware. The load generator runs here, pinned to CPU 1 (on a machine with
two CPUs or more): a raw asyncio client over keep-alive HTTP/1.1 connections, each sending a batch of
pre-encoded GET requests at once (pipelining) and reading until every response of the batch is complete.

Rounds of a fixed duration, interleaved bare/ours/sdk (order alternating), paired into per-round ratios
whose median is the figure, as in process.

The client is not the bottleneck, and every run shows it: the server process's CPU time over each round
(asked through the pipe before and after) is ~100% of the wall time, the client's (`getrusage`) at most
~30% of its own CPU, in the bare rounds too (the fastest). Checked by hand as well, on 2 CPUs with uvicorn
h11/asyncio (~8,000 bare req/s): 8 connections x 8, 32 x 8 and 16 x 16 pipelined requests give the same
bare req/s as 16 x 8 within the round-to-round noise; 64 connections without pipelining gave ~10-15%
more, the client still at ~25% of its CPU: not a client limit, but the server's own cost of pipelined
input (uvicorn's h11 protocol pauses and resumes reading for each request queued behind another).

The listening socket is bound here with IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only
then (uvicorn's own bind gets it from getaddrinfo); without it Nagle holds each response body back until
the client's delayed ACK, and the server answers ~25 requests/s per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import logging
import multiprocessing
import os
import resource
import socket
import statistics
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from benchmarks import bearer
from benchmarks._harness import HOST, median_ratio, new_server

# Many short rounds: on this VM the server's speed drifts by tens of percent from one second to the next
# (with no steal time reported); 20 rounds of 0.5 s gave SDK ratios of 0.465-0.467 over three runs where
# 5 rounds of 2 s gave 0.46-0.58.
DURATION_S = 0.5
WARMUP_S = 0.5
ROUNDS = 20
CONNECTIONS = 16
PIPELINE = 8
APPS = ("bare", "ours", "swap", "sdk")
SERVER_CPU = 0
CLIENT_CPU = 1
STARTUP_TIMEOUT_S = 60.0
REPLY_TIMEOUT_S = 10.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _implementations() -> tuple[str, str]:
    """uvicorn's fast parser and loop when installed (`uvicorn[standard]`), its pure-Python ones otherwise."""
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return http, loop


# --- the server process -------------------------------------------------------------------------------


class _ByPath:
    """The same dispatch for the three apps: one dict lookup, then the chosen app sees `/mcp`."""

    def __init__(self, apps: Mapping[str, ASGIApp]) -> None:
        self._apps = dict(apps)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._apps.get(scope.get("path", ""))
        if app is None:
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        scope["path"] = bearer.PATH
        scope["raw_path"] = bearer.PATH.encode()
        await app(scope, receive, send)


def serve(conn: Connection, cpu: int | None) -> None:
    """The server process: builds the apps and a token, answers `cpu` and `stop` on the pipe.

    Sends `(port, token, http, loop)` once the server listens. Exits when told to stop, when the
    parent closes its end of the pipe, or on SIGTERM (uvicorn's graceful shutdown).
    """
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")

    import uvicorn

    auth = new_server()
    token = bearer.bench_token(auth)
    asyncio.run(bearer.give_upstream_tokens(auth))
    apps = bearer.protected_apps(auth, bearer.trivial_app())
    app = _ByPath({f"/{name}": apps[name] for name in APPS})

    # IPPROTO_TCP, or no TCP_NODELAY on the accepted sockets (see the module's docstring).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    port: int = sock.getsockname()[1]
    http, loop = _implementations()
    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        log_level="error",
        access_log=False,
        lifespan="off",
        http=http,
        loop=loop,
        timeout_keep_alive=60,
    )
    server = uvicorn.Server(config)

    def on_pipe() -> None:
        try:
            message = conn.recv()
        except EOFError:
            message = "stop"
        if message == "cpu":
            conn.send(_cpu_seconds())
        else:
            server.should_exit = True
            asyncio.get_running_loop().remove_reader(conn.fileno())

    async def main() -> None:
        asyncio.get_running_loop().add_reader(conn.fileno(), on_pipe)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started:
            conn.send((port, token, http, loop))
        await task
        await auth.aclose()

    try:
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(main())
    finally:
        sock.close()
        conn.close()


class _ServerProcess:
    """The parent's handle on the server process."""

    def __init__(self, conn: Connection, process: multiprocessing.process.BaseProcess) -> None:
        self._conn = conn
        self._process = process

    def _reply(self) -> Any:
        if not self._conn.poll(REPLY_TIMEOUT_S):
            raise RuntimeError("the benchmark server did not answer")
        return self._conn.recv()

    def cpu_seconds(self) -> float:
        self._conn.send("cpu")
        seconds: float = self._reply()
        return seconds

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self._process.join(5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()


@contextlib.contextmanager
def _server(cpu: int | None) -> Iterator[tuple[_ServerProcess, int, str, str, str]]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=serve, args=(child, cpu), name="bench-uvicorn", daemon=True)
    process.start()
    child.close()
    handle = _ServerProcess(parent, process)
    try:
        if not parent.poll(STARTUP_TIMEOUT_S):
            raise RuntimeError("the benchmark server did not start")
        port, token, http, loop = parent.recv()
        yield handle, port, token, http, loop
    except EOFError as exc:
        raise RuntimeError(f"the benchmark server exited (code {process.exitcode})") from exc
    finally:
        handle.stop()


@contextlib.contextmanager
def _without_gc() -> Iterator[None]:
    """The client's own collections would stall every connection at once: none during the rounds."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextlib.contextmanager
def _pinned(cpu: int | None) -> Iterator[None]:
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


# --- the load generator -------------------------------------------------------------------------------


def _request(path: str, port: int, token: str | None) -> bytes:
    """The headers of the in-process benchmark, as a client sends them."""
    lines = [
        f"GET {path} HTTP/1.1",
        f"host: {HOST}:{port}",
        "user-agent: mcp-bench/1.0",
        "accept: application/json, text/event-stream",
        "accept-encoding: gzip, deflate",
        "mcp-protocol-version: 2025-11-25",
    ]
    if token is not None:
        lines.append(f"authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Client(asyncio.Protocol):
    """One keep-alive connection: `exchange` writes a batch of requests and waits for as many responses."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._pending = 0
        self._statuses: list[int] = []
        self._done: asyncio.Future[list[int]] | None = None
        self._error: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        try:
            while self._pending:
                head_end = buffer.find(b"\r\n\r\n", start)
                if head_end < 0:
                    break
                head = bytes(buffer[start:head_end]).lower()
                at = head.find(b"\r\ncontent-length:")
                if at < 0:
                    raise RuntimeError(f"a response without content-length: {head[:200]!r}")
                line_end = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
                end = head_end + 4 + length
                if len(buffer) < end:
                    break
                self._statuses.append(int(head[9:12]))
                self._pending -= 1
                start = end
        except (RuntimeError, ValueError) as exc:
            self._fail(exc)
            return
        del buffer[:start]
        if not self._pending and self._done is not None and not self._done.done():
            self._done.set_result(self._statuses)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionError("the connection is closed"))

    def _fail(self, exc: BaseException) -> None:
        self._error = self._error or exc
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)

    async def exchange(self, batch: bytes, count: int) -> list[int]:
        assert self._transport is not None
        if self._error is not None:
            raise self._error
        self._statuses = []
        self._pending = count
        self._done = asyncio.get_running_loop().create_future()
        self._transport.write(batch)
        return await self._done

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def _connect(port: int, n: int) -> list[_Client]:
    loop = asyncio.get_running_loop()
    clients: list[_Client] = []
    for _ in range(n):
        _, client = await loop.create_connection(_Client, HOST, port)
        clients.append(client)
    return clients


async def _status(port: int, path: str, token: str | None) -> int:
    async with asyncio.timeout(REPLY_TIMEOUT_S):
        (client,) = await _connect(port, 1)
        try:
            (status,) = await client.exchange(_request(path, port, token), 1)
        finally:
            client.close()
    return status


@dataclass(frozen=True)
class _Round:
    requests: int
    seconds: float
    client_cpu: float
    server_cpu: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True)
class _Load:
    port: int
    connections: int
    pipeline: int


async def _round(server: _ServerProcess, load: _Load, request: bytes, duration: float) -> _Round:
    batch = request * load.pipeline
    clients = await _connect(load.port, load.connections)

    async def drive(client: _Client) -> int:
        done = 0
        while time.perf_counter() < deadline:
            statuses = await client.exchange(batch, load.pipeline)
            if any(status != 200 for status in statuses):
                raise RuntimeError(f"a request with a valid token got {sorted(set(statuses))}")
            done += len(statuses)
        return done

    try:
        server_before = server.cpu_seconds()
        client_before = _cpu_seconds()
        start = time.perf_counter()
        deadline = start + duration
        async with asyncio.timeout(duration + REPLY_TIMEOUT_S), asyncio.TaskGroup() as group:
            tasks = [group.create_task(drive(client)) for client in clients]
        seconds = time.perf_counter() - start
        client_cpu = _cpu_seconds() - client_before
        server_cpu = server.cpu_seconds() - server_before
    finally:
        for client in clients:
            client.close()
    return _Round(sum(task.result() for task in tasks), seconds, client_cpu / seconds, server_cpu / seconds)


@dataclass(frozen=True)
class HttpBearerResult(bearer.BearerResult):
    """The same figures as in process (rates are medians over rounds), plus how the run went."""

    client_cpu_share: float
    """The client's CPU time over wall time, the most of any round: well below 1, it kept up."""
    server_cpu_share: float
    """The server's CPU time over wall time, median of the rounds: ~1, it was the bottleneck."""
    http: str
    loop: str
    pinned: bool
    connections: int
    pipeline: int
    duration: float
    per_round: dict[str, list[float]]
    """Each app's req/s in each round, in the order measured."""

    @property
    def bare_us(self) -> float:
        return 1e6 / self.bare_rps

    @property
    def ours_overhead_us(self) -> float:
        """From the median ratio, not from the medians of req/s, which drift between rounds unpaired."""
        return self.bare_us * (1 / self.ratio - 1)

    @property
    def sdk_overhead_us(self) -> float:
        return self.bare_us * (1 / self.sdk_ratio - 1)


async def run(
    *, rounds: int = ROUNDS, duration: float = DURATION_S, connections: int = CONNECTIONS, pipeline: int = PIPELINE
) -> HttpBearerResult:
    """Starts the server process, checks the answers (200 with the token, 401 without), warms up, measures."""
    pinned = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
    with (
        _server(SERVER_CPU if pinned else None) as (server, port, token, http, loop),
        _pinned(CLIENT_CPU if pinned else None),
        _without_gc(),
    ):
        load = _Load(port, connections, pipeline)
        requests = {name: _request(f"/{name}", port, token) for name in APPS}
        for name in APPS:
            if (status := await _status(port, f"/{name}", token)) != 200:
                raise RuntimeError(f"{name}: a valid token got {status} over HTTP")
        for name in ("ours", "swap", "sdk"):
            if (status := await _status(port, f"/{name}", None)) != 401:
                raise RuntimeError(f"{name}: a request without a token got {status} over HTTP")
        for name in APPS:
            await _round(server, load, requests[name], WARMUP_S)

        measured: dict[str, list[_Round]] = {name: [] for name in APPS}
        for round_ in range(rounds):
            for name in APPS if round_ % 2 == 0 else reversed(APPS):
                measured[name].append(await _round(server, load, requests[name], duration))

    rates = {name: [r.rps for r in values] for name, values in measured.items()}
    best = {name: max(values) for name, values in rates.items()}
    return HttpBearerResult(
        bare_rps=statistics.median(rates["bare"]),
        ours_rps=statistics.median(rates["ours"]),
        sdk_rps=statistics.median(rates["sdk"]),
        ratio=median_ratio(rates["ours"], rates["bare"]),
        sdk_ratio=median_ratio(rates["sdk"], rates["bare"]),
        ratio_of_best=best["ours"] / best["bare"],
        sdk_ratio_of_best=best["sdk"] / best["bare"],
        rounds=rounds,
        swap_ratio=median_ratio(rates["swap"], rates["ours"]),
        client_cpu_share=max(r.client_cpu for values in measured.values() for r in values),
        server_cpu_share=statistics.median(r.server_cpu for values in measured.values() for r in values),
        http=http,
        loop=loop,
        pinned=pinned,
        connections=connections,
        pipeline=pipeline,
        duration=duration,
        per_round=rates,
    )
