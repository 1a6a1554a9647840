"""`lde up` as a child process with extra settings: used by `lde demo` and the integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from ops.runtime.client import ServiceClient
from ops.runtime.embedded import wait_until
from ops.settings import Settings
from sinks.errors import StackError


class ServiceProcess:
    """`lde up` as a child process with extra settings; used by the demo and the integration tests."""

    def __init__(self, settings: Settings, env: dict[str, str], log_path: Path) -> None:
        self.settings = settings
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> None:
        self.log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The service's log names students' ids at debug level: the operator's alone (issue 22).
        descriptor = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(descriptor, "ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ops.cli", "up"],
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        client = ServiceClient(self.settings, timeout=2)
        if not wait_until(lambda: self.exited() or client.running(), timeout, 0.5) or self.exited():
            tail = self.log_path.read_text(errors="replace")[-1500:]
            self.stop()
            raise StackError(f"the service did not start; its log ({self.log_path}) ends:\n{tail}")

    def exited(self) -> bool:
        return self.process is None or self.process.poll() is not None

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def kill(self) -> None:
        """kill -9: no clean shutdown (reliability tests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None
