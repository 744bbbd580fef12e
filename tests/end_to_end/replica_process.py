"""tests/end_to_end/replica_app.py under uvicorn in a process of its own, as a deployment runs a replica.

A process rather than a task, so the server has a core to itself while the test loads it; its stderr
(uvicorn's lines and the app's log) is read as it is written, which is how the test knows it is ready.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests import redis_servers

ROOT = Path(__file__).resolve().parents[2]


class ReplicaProcess:
    def __init__(self, env: Mapping[str, str], *, port: int | None = None, uvicorn_args: Sequence[str] = ()) -> None:
        self.port = port or redis_servers.free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "tests.end_to_end.replica_app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log", *uvicorn_args],
            env=dict(env), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert self.process.stderr is not None
        self.log = redis_servers.ProcessOutput(self.process.stderr)

    def wait_ready(self) -> None:
        """Until uvicorn says that it listens, which it does once the app's startup is done."""
        self.log.wait_for("Uvicorn running on")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:  # a request still open (a failed test's) holds up the graceful exit
            self.process.kill()
            self.process.wait(timeout=15)
        self.log.close()
