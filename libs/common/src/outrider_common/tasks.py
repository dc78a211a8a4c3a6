"""Background tasks a service cannot work without: one that dies ends the process, so it is restarted."""

import asyncio
import logging
import os

log = logging.getLogger(__name__)
EXIT_TASK_DIED = 70  # EX_SOFTWARE: an internal error, not a bad setting


def supervise(task: asyncio.Task[None], name: str) -> asyncio.Task[None]:
    """Return `task`, made to end the process (exit 70) with the traceback logged if it fails.

    A dead flusher, relay or dispatcher leaves a process that answers /healthz but no longer does its work; exiting
    at once (as a crash would: every store here is crash-safe) gets it restarted by Kubernetes, or shows it stopped
    under `make up`, instead of a probe that would have to know about every task. Cancellation is the normal end.
    """

    def ended(task: asyncio.Task[None]) -> None:
        if task.cancelled() or (exc := task.exception()) is None:
            return
        log.critical("background task died, exiting task=%s", name, exc_info=exc)
        logging.shutdown()  # flush every handler: os._exit skips the interpreter's own shutdown
        os._exit(EXIT_TASK_DIED)

    task.add_done_callback(ended)
    return task
