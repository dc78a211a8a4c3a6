"""Shipped offsets per file, in a state file that is replaced atomically (a crash leaves the old or the new one).

The file maps each file id to the offset acknowledged so far, or, while a request is out, to
`{"offset": N, "sending": [START, END]}`: the byte range of that request, resent exactly after a restart.
"""

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class StateFileError(Exception):
    """The state file cannot be read, understood or written; it is never replaced behind the user's back."""


def reason(exc: OSError) -> str:
    """`is a directory`, `permission denied`: what the system said, to follow a path and a colon."""
    return exc.strerror.lower() if exc.strerror else type(exc).__name__


def _range(value: object) -> tuple[int, int] | None:
    """`[start, end]` as a pair of offsets, or None when it is not one."""
    if isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value) and 0 <= value[0] <= value[1]:
        return value[0], value[1]
    return None


def _entry(value: object) -> tuple[int, tuple[int, int] | None] | None:
    """(offset, range in flight) of one file's entry, or None when it is neither form."""
    if type(value) is int and value >= 0:
        return value, None
    if isinstance(value, dict) and set(value) == {"offset", "sending"}:
        offset, sending = value["offset"], _range(value["sending"])
        if type(offset) is int and offset >= 0 and sending is not None:
            return offset, sending
    return None


def _load(path: Path) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return {}, {}
    except OSError as exc:
        raise StateFileError(f"{path}: cannot read the state file: {reason(exc)}") from None
    try:
        entries = json.loads(text)
    except ValueError:  # also bytes that are not UTF-8
        why = "not JSON"
    else:
        parsed = {k: _entry(v) for k, v in entries.items()} if isinstance(entries, dict) else {"": None}
        if all(entry is not None for entry in parsed.values()):
            offsets = {k: entry[0] for k, entry in parsed.items() if entry is not None}
            sending = {k: entry[1] for k, entry in parsed.items() if entry is not None and entry[1] is not None}
            return offsets, sending
        why = "not a map of file ids to offsets"
    # It records what ingest already acknowledged: starting over may count lines twice, so the user decides.
    raise StateFileError(
        f"{path}: corrupt state file ({why}); it records what was already shipped, so it is left as it is: restore "
        f"it from a backup, or move it aside to ship every file again from its start (lines may then count twice)"
    )


@contextmanager
def held(path: Path) -> Iterator[None]:
    """The state file, for this process alone while inside (a lock on `<name>.lock` beside it; the OS lets it go if
    the process dies).

    Two shippers saving one state file would each write back their own view of it, undoing the other's offsets: after
    a restart a file would be sent again from an older offset, with other chunk boundaries, and counted twice.
    """
    lock = path.with_name(f"{path.name}.lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StateFileError(f"{lock}: cannot open the state file's lock: {reason(exc)}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateFileError(
                f"{path}: another shipper is using this state file; give each shipper its own --state"
            ) from None
        except OSError as exc:
            raise StateFileError(f"{lock}: cannot lock the state file: {reason(exc)}") from None
        yield
    finally:
        os.close(fd)


class Checkpoints:
    """`file_id → offset` of the first byte not yet acknowledged by ingest, and the byte range of a request that
    may have reached ingest without its answer being recorded."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offsets, self.sending = _load(path)

    def get(self, file_id: str) -> int:
        """Where shipping of `file_id` resumes (0 for a file never seen)."""
        return self.offsets.get(file_id, 0)

    def in_flight(self, file_id: str) -> tuple[int, int] | None:
        """The byte range `(start, end)` sent and not acknowledged yet, or None."""
        return self.sending.get(file_id)

    def begin(self, file_id: str, start: int, end: int) -> None:
        """Record, durably, that bytes `[start, end)` are about to be sent.

        Ingest may pass them to Kafka and the shipper die before `advance`: the restart must send the very same range,
        because the chunk ids are start offsets and a longer resend's last chunk would be dropped as a duplicate.
        """
        if self.sending.get(file_id) == (start, end):
            return
        self.sending[file_id] = (start, end)
        self._save_or_raise()

    def advance(self, file_id: str, offset: int) -> None:
        """Record that everything before `offset` is durable, and persist it."""
        self.offsets[file_id] = offset
        self.sending.pop(file_id, None)
        self._save_or_raise()

    def _save_or_raise(self) -> None:
        try:
            self._save()
        except OSError as exc:
            raise StateFileError(f"{self.path}: cannot save the state file: {reason(exc)}") from None

    def _entries(self) -> dict[str, object]:
        entries: dict[str, object] = dict(self.offsets)
        for file_id, (start, end) in self.sending.items():
            entries[file_id] = {"offset": self.get(file_id), "sending": [start, end]}
        return entries

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(self._entries(), out, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)
            raise
        # The rename itself is durable only once the directory is: otherwise a power cut can bring back the old file.
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
