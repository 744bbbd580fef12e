"""Real Redis servers for the tests, started from the `redis-server` binary on loopback ports.

Standalone, a three-master Cluster, and a Sentinel setup (master, replica, sentinel). The tests
own these processes, so they can also stop and restart them to test outages. Without the binary
the Redis tests are skipped with a reason, except in CI (`CI` set), where that is an error.

A process is waited on through what it says (`ProcessOutput`): a server is up when its log says it
accepts connections, a cluster when every node logs that its state is ok, never after a guessed delay.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


def require_redis() -> None:
    if REDIS_SERVER is None or REDIS_CLI is None:
        message = "redis-server and redis-cli are not on PATH (Debian: apt install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must run the Redis tests")
        pytest.skip(message)


def free_port(below: int = 65536) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port < below:
            return port


def _cli(port: int, *args: str) -> str:
    assert REDIS_CLI is not None
    result = subprocess.run(
        [REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True, text=True, timeout=30, check=False
    )
    return result.stdout.strip()


class ProcessOutput:
    """The lines a child process writes to a pipe, taken in by a thread as they come, to wait on.

    Reading keeps the pipe drained, so a chatty process never blocks on a full one. `wait_for` returns
    when a line says what the caller waits for, and raises if the process closes the pipe (ends) first.
    """

    def __init__(self, pipe: IO[bytes]) -> None:
        self.lines: list[str] = []
        self._closed = False
        self._news = threading.Condition()
        self._reader = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._reader.start()

    def _read(self, pipe: IO[bytes]) -> None:
        with pipe:
            for line in iter(pipe.readline, b""):
                with self._news:
                    self.lines.append(line.decode(errors="replace").rstrip("\r\n"))
                    self._news.notify_all()
        with self._news:
            self._closed = True
            self._news.notify_all()

    def wait_for(self, wanted: str | Callable[[str], bool], *, start: int = 0, timeout: float = 60.0) -> int:
        """The index of the first line from `start` on that contains `wanted` (or that it accepts).

        `timeout` guards against hanging only: what is waited for comes in milliseconds to seconds.
        """
        accepts = wanted if callable(wanted) else lambda line: wanted in line
        checked = start

        def seen() -> bool:
            nonlocal checked
            while checked < len(self.lines) and not accepts(self.lines[checked]):
                checked += 1
            return checked < len(self.lines) or self._closed

        with self._news:
            if not self._news.wait_for(seen, timeout):
                raise RuntimeError(f"waited {timeout} s for {wanted!r}:\n" + "\n".join(self.lines[-30:]))
            if checked == len(self.lines):
                raise RuntimeError(f"the process ended before {wanted!r}:\n" + "\n".join(self.lines[-30:]))
            return checked

    def close(self) -> None:
        """After the process ended: every line it wrote is in `lines`."""
        self._reader.join(timeout=30)


def _launch(args: list[str], ready: str) -> tuple[subprocess.Popen[bytes], ProcessOutput]:
    """Start a redis-server logging to its stdout (the default); return once its log says `ready`."""
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    output = ProcessOutput(process.stdout)
    try:
        output.wait_for(ready)
    except BaseException:
        process.kill()
        process.wait(timeout=10)
        output.close()
        raise
    return process, output


@dataclass
class RedisProcess:
    """One redis-server (or sentinel) process on a loopback port; stop() and start() keep the port."""

    port: int
    directory: Path
    extra: list[str] = field(default_factory=list)
    sentinel: bool = False
    process: subprocess.Popen[bytes] | None = None
    output: ProcessOutput | None = None

    @property
    def ready_line(self) -> str:
        """What the log says once the process serves: a sentinel has no "ready" line; it says when it begins
        to watch the master of its configuration, which it does once it accepts connections."""
        return "+monitor master" if self.sentinel else "Ready to accept connections"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        args = [REDIS_SERVER]
        if self.sentinel:
            config = self.directory / f"sentinel-{self.port}.conf"
            if not config.exists():
                config.write_text("\n".join(self.extra) + "\n")
            args = [REDIS_SERVER, str(config), "--sentinel"]
        else:
            args += self.extra
        defaults = ["--save", ""] + ([] if "--appendonly" in self.extra else ["--appendonly", "no"])
        args += ["--port", str(self.port), "--bind", "127.0.0.1", *defaults, "--dir", str(self.directory)]
        self.process, self.output = _launch(args, self.ready_line)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None
        if self.output is not None:
            self.output.close()

    def freeze(self) -> None:
        """Stall the server (SIGSTOP): connections stay open, nothing is answered, until `thaw`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@contextlib.contextmanager
def standalone(*extra: str, persistent: bool = False) -> Iterator[RedisProcess]:
    """One server; `persistent` keeps an fsync'd append-only file, so a killed server comes back with its data."""
    with tempfile.TemporaryDirectory(prefix="redis-") as directory:
        options = [*extra]
        if persistent:
            options += ["--appendonly", "yes", "--appendfsync", "always"]
        server = RedisProcess(free_port(), Path(directory), options)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def cluster() -> Iterator[list[RedisProcess]]:
    """Three masters, no replicas: every slot covered, so any key can be written."""
    with tempfile.TemporaryDirectory(prefix="redis-cluster-") as directory:
        nodes = []
        try:
            for _ in range(3):
                port = free_port(below=55535)  # the cluster bus listens on port + 10000
                node_dir = Path(directory) / str(port)
                node_dir.mkdir()
                node = RedisProcess(port, node_dir, ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"])
                node.start()
                nodes.append(node)
            addresses = [f"127.0.0.1:{node.port}" for node in nodes]
            _cli(nodes[0].port, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes")
            # `--cluster create` returns once the nodes agree on the slots; each node serves them once it has
            # changed its own state to ok (a master that just started holds off for a while first).
            for node in nodes:
                assert node.output is not None
                node.output.wait_for("Cluster state changed: ok")
            yield nodes
        finally:
            for node in nodes:
                node.stop()


@contextlib.contextmanager
def sentinel_setup(service: str = "mymaster") -> Iterator[tuple[RedisProcess, RedisProcess, RedisProcess]]:
    """A master, a replica of it, and one sentinel watching them."""
    with tempfile.TemporaryDirectory(prefix="redis-sentinel-") as directory:
        root = Path(directory)
        master = RedisProcess(free_port(), root)
        replica_port = free_port()
        replica = RedisProcess(replica_port, root, ["--replicaof", "127.0.0.1", "0"])
        watcher = RedisProcess(
            free_port(),
            root,
            [f"sentinel monitor {service} 127.0.0.1 {{port}} 1", f"sentinel down-after-milliseconds {service} 1000"],
            sentinel=True,
        )
        try:
            master.start()
            replica.extra = ["--replicaof", "127.0.0.1", str(master.port)]
            replica.start()
            watcher.extra = [line.replace("{port}", str(master.port)) for line in watcher.extra]
            watcher.start()  # up once it watches the master (its `ready_line`)
            yield master, replica, watcher
        finally:
            for process in (watcher, replica, master):
                process.stop()


@contextlib.contextmanager
def tls_standalone(cert_file: Path, key_file: Path) -> Iterator[int]:
    """A Redis that speaks only TLS; yields its port."""
    assert REDIS_SERVER is not None
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="redis-tls-") as directory:
        process, output = _launch(
            [REDIS_SERVER, "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert_file),
             "--tls-key-file", str(key_file), "--tls-auth-clients", "no", "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", directory],
            "Ready to accept connections",
        )  # fmt: skip
        try:
            yield port
        finally:
            process.kill()
            process.wait(timeout=10)
            output.close()
