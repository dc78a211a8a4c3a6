"""Shipped offsets per file, in a state file that is replaced atomically (a crash leaves the old or the new one)."""

import json
import os
import tempfile
from pathlib import Path


class StateFileError(Exception):
    """The state file cannot be read, understood or written; it is never replaced behind the user's back."""


def reason(exc: OSError) -> str:
    """`is a directory`, `permission denied`: what the system said, to follow a path and a colon."""
    return exc.strerror.lower() if exc.strerror else type(exc).__name__


def _load(path: Path) -> dict[str, int]:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise StateFileError(f"{path}: cannot read the state file: {reason(exc)}") from None
    try:
        offsets = json.loads(text)
    except ValueError:  # also bytes that are not UTF-8
        why = "not JSON"
    else:
        if isinstance(offsets, dict) and all(type(v) is int and v >= 0 for v in offsets.values()):
            return offsets
        why = "not a map of file ids to offsets"
    # It records what ingest already acknowledged: starting over may count lines twice, so the user decides.
    raise StateFileError(
        f"{path}: corrupt state file ({why}); it records what was already shipped, so it is left as it is: restore "
        f"it from a backup, or move it aside to ship every file again from its start (lines may then count twice)"
    )


class Checkpoints:
    """`file_id → offset` of the first byte not yet acknowledged by ingest."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offsets = _load(path)

    def get(self, file_id: str) -> int:
        """Where shipping of `file_id` resumes (0 for a file never seen)."""
        return self.offsets.get(file_id, 0)

    def advance(self, file_id: str, offset: int) -> None:
        """Record that everything before `offset` is durable, and persist it."""
        self.offsets[file_id] = offset
        try:
            self._save()
        except OSError as exc:
            raise StateFileError(f"{self.path}: cannot save the state file: {reason(exc)}") from None

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(self.offsets, out, sort_keys=True)
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
