"""Real Redis servers for the tests, started from the `redis-server` binary on loopback ports.

Standalone, a three-master Cluster, and a Sentinel setup (master, replica, sentinel). The tests
own these processes, so they can also stop and restart them to test outages. Without the binary
the Redis tests are skipped with a reason, except in CI (`CI` set), where that is an error.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

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


def _wait(condition: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


@dataclass
class RedisProcess:
    """One redis-server (or sentinel) process on a loopback port; stop() and start() keep the port."""

    port: int
    directory: Path
    extra: list[str] = field(default_factory=list)
    sentinel: bool = False
    process: subprocess.Popen[bytes] | None = None

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
        args += ["--port", str(self.port), "--bind", "127.0.0.1", *defaults,
                 "--dir", str(self.directory), "--logfile", str(self.directory / f"redis-{self.port}.log")]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: _cli(self.port, "PING") == "PONG", f"redis on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

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
            _wait(
                lambda: all("cluster_state:ok" in _cli(node.port, "CLUSTER", "INFO") for node in nodes),
                "the cluster to settle",
            )
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
            watcher.start()
            _wait(
                lambda: str(master.port) in _cli(watcher.port, "SENTINEL", "get-master-addr-by-name", service),
                "the sentinel to know the master",
            )
            yield master, replica, watcher
        finally:
            for process in (watcher, replica, master):
                process.stop()


@contextlib.contextmanager
def tls_standalone(cert_file: Path, key_file: Path) -> Iterator[int]:
    """A Redis that speaks only TLS; yields its port."""
    assert REDIS_SERVER is not None
    assert REDIS_CLI is not None
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="redis-tls-") as directory:
        process = subprocess.Popen(
            [REDIS_SERVER, "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert_file),
             "--tls-key-file", str(key_file), "--tls-auth-clients", "no", "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", directory],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

        def ready() -> bool:
            result = subprocess.run(
                [REDIS_CLI, "--tls", "--insecure", "-h", "127.0.0.1", "-p", str(port), "PING"],
                capture_output=True, text=True, timeout=10, check=False,
            )  # fmt: skip
            return result.stdout.strip() == "PONG"

        try:
            _wait(ready, f"TLS redis on port {port}")
            yield port
        finally:
            process.kill()
            process.wait(timeout=10)
