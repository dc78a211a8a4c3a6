"""Shipped offsets per file, in a state file that is replaced atomically (a crash leaves the old or the new one)."""

import json
import os
import tempfile
from pathlib import Path


class Checkpoints:
    """`file_id → offset` of the first byte not yet acknowledged by ingest."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offsets: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}

    def get(self, file_id: str) -> int:
        """Where shipping of `file_id` resumes (0 for a file never seen)."""
        return self.offsets.get(file_id, 0)

    def advance(self, file_id: str, offset: int) -> None:
        """Record that everything before `offset` is durable, and persist it."""
        self.offsets[file_id] = offset
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(fd, "w") as out:
            json.dump(self.offsets, out, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        # The rename itself is durable only once the directory is: otherwise a power cut can bring back the old file.
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
