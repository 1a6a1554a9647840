"""How a worker stops itself, and the exit codes `lde up` returns when it does."""

from __future__ import annotations

import logging
import os
import signal
import threading

log = logging.getLogger("lde.stream")

#: `lde up`'s exit code when the broker came back as another (empty) cluster under a running worker.
BROKER_REPLACED_EXIT = 3
#: `lde up`'s exit code when a batch of activity could not be applied (it is consumed again on restart).
BATCH_FAILED_EXIT = 4


def stop_process(code: int, grace_seconds: float = 30.0) -> None:
    """Stop this worker as SIGTERM does (graceful: Faust leaves the group, stores close), and exit
    with `code` anyway if that has not finished within `grace_seconds` (a stop against a replaced
    broker may wait on requests that never complete)."""

    def hard_exit() -> None:
        log.error("worker_stop_overdue exit_code=%d after %.0fs", code, grace_seconds)
        logging.shutdown()
        os._exit(code)

    timer = threading.Timer(grace_seconds, hard_exit)
    timer.daemon = True
    timer.start()
    os.kill(os.getpid(), signal.SIGTERM)
