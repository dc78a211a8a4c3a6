"""Reading whole lines from files that grow and rotate (pure file I/O, no network)."""

import glob
import gzip
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from outrider.ship.checkpoint import Checkpoints, reason

# The file name says the log type for Omnibus GitLab's layout; anything else is detected by the server.
LOG_TYPES = {"production_json.log": "production_json", "api_json.log": "api_json"}
PARENT_LOG_TYPES = {"gitaly": "gitaly", "sidekiq": "sidekiq"}
FIRST_LINE_BYTES = 4096
BATCH_BYTES = 8 << 20  # a request's lines, ~1.2 MiB gzipped
# A line is never cut below this, whatever the batch size (ingest takes lines up to its OUTRIDER_MAX_LINE_BYTES,
# 4 MiB by default, and answers 413 beyond); a longer one is sent cut, for ingest to refuse.
LONGEST_LINE = 64 << 20
ROTATION_GRACE_S = 5.0  # an application writes to a renamed log until it reopens it (logrotate's postrotate signal)


def log_type_of(path: Path) -> str | None:
    """production_json, api_json, gitaly or sidekiq when the path says so."""
    name = path.name.split(".log")[0] + ".log" if ".log" in path.name else path.name
    return LOG_TYPES.get(name) or (PARENT_LOG_TYPES.get(path.parent.name) if path.name == "current" else None)


def file_id_of(handle: BinaryIO) -> str | None:
    """Identity of one file that survives renames: device, inode and a CRC of its first line (up to 4 KiB).

    The CRC tells a new file that reuses a deleted file's inode, or a file truncated in place, from the old one (same
    offsets would otherwise repeat chunk ids, and the analyzer would drop the new lines as duplicates). The whole first
    line counts because GitLab's JSON lines share long prefixes and differ only later, in time and correlation id.
    None until a first line is complete.
    """
    stat = os.fstat(handle.fileno())
    handle.seek(0)
    head = handle.read(FIRST_LINE_BYTES)
    end = head.find(b"\n")
    if end < 0 and len(head) < FIRST_LINE_BYTES:
        return None
    return f"{stat.st_dev}:{stat.st_ino}:{zlib.crc32(head[: end + 1 if end >= 0 else FIRST_LINE_BYTES]):08x}"


class LogFileError(Exception):
    """A log file that is there but cannot be read (a directory, no permission)."""


def is_glob(pattern: str) -> bool:
    """Whether `pattern` is expanded (`*`, `?`, `[`) rather than a plain path."""
    return any(c in pattern for c in "*?[")


def paths_of(patterns: Iterable[str]) -> list[Path]:
    """The files the patterns name now, each once; a plain path that does not exist yet is kept, to be waited for.

    Compressed rotations (.gz) are skipped: finished files whose bytes are not lines (`bundle` reads them); so are
    the directories a glob matches.
    """
    found: dict[Path, None] = {}
    for pattern in patterns:
        for match in sorted(glob.glob(pattern)) if is_glob(pattern) else [pattern]:
            if not match.endswith(".gz") and not Path(match).is_dir():
                found[Path(match)] = None
    return list(found)


@dataclass(frozen=True)
class Batch:
    """Whole lines of one file starting at `offset`."""

    path: Path
    file_id: str
    offset: int
    data: bytes


class _Open:
    def __init__(self, path: Path, handle: BinaryIO, file_id: str, offset: int, *, left: bool = False) -> None:
        self.path, self.handle, self.file_id, self.offset = path, handle, file_id, offset
        self.left = left  # a file rotation took from the path while no shipper ran: finished under `file_id`


def _siblings(path: Path) -> list[Path]:
    """Where rotation puts a file's old contents: name.1, name.2.gz, name-20240501 (logrotate), @<tai64n>.s
    (svlogd's current, gzipped when a processor is set), oldest first."""
    patterns = [f"{glob.escape(path.name)}.*", f"{glob.escape(path.name)}-*"]
    if path.name == "current":
        patterns.append("@4000*")
    found = {Path(m) for p in patterns for m in glob.glob(str(path.parent / p))}
    named: list[tuple[float, Path]] = []
    for sibling in found:
        try:
            named.append((sibling.stat().st_mtime, sibling))
        except OSError:  # gone meanwhile (rotation goes on)
            continue
    return [p for _, p in sorted(named) if p.is_file()]


def _gzipped(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _first_line_crc(path: Path) -> str | None:
    """The CRC `file_id_of` keeps of a gzipped file's first line, as it was before compression."""
    with gzip.open(path, "rb") as handle:
        head = handle.read(FIRST_LINE_BYTES)
    end = head.find(b"\n")
    if end < 0 and len(head) < FIRST_LINE_BYTES:
        return None
    return f"{zlib.crc32(head[: end + 1 if end >= 0 else FIRST_LINE_BYTES]):08x}"


def _expanded_rest(path: Path, offset: int) -> BinaryIO | None:
    """A gzipped file's bytes from `offset` on, at the same offsets, in an unlinked sparse temporary file (None when
    nothing is left): read like the file before it was compressed, whatever the batches' cuts."""
    with path.open("rb") as raw:
        raw.seek(-4, os.SEEK_END)
        if int.from_bytes(raw.read(4), "little") == offset & 0xFFFFFFFF:  # gzip's trailer: the size, modulo 2**32
            return None
    rest = tempfile.TemporaryFile()  # noqa: SIM115 (returned open: the tailer reads it, closing deletes it)
    try:
        with gzip.open(path, "rb") as content:
            skip = offset
            while skip and (skipped := len(content.read(min(skip, 1 << 20)))):
                skip -= skipped
            rest.seek(offset)
            shutil.copyfileobj(content, rest, 1 << 20)
        if rest.tell() <= offset:
            rest.close()
            return None
        stat = path.stat()
        os.utime(rest.fileno(), (stat.st_atime, stat.st_mtime))  # as quiet as the file: no grace period to wait
        return cast(BinaryIO, rest)
    except BaseException:
        rest.close()
        raise


class Tailer:
    """Follows one path across appends, rename rotation and copytruncate.

    The file is kept open, so after a rename the rest of the old file is still read before moving on to the new
    one: until nothing has been written to it for `rotation_grace_s`, and only then is an unfinished last line shipped
    as it is. A file whose first line changes, or that shrinks, under the same inode was truncated in place and is
    read again from its start.
    """

    def __init__(
        self,
        path: Path,
        checkpoints: Checkpoints,
        max_bytes: int = BATCH_BYTES,
        rotation_grace_s: float = ROTATION_GRACE_S,
        tell: Callable[[str], None] | None = None,
    ) -> None:
        self.path, self._checkpoints, self._max, self._grace_s = path, checkpoints, max_bytes, rotation_grace_s
        self._open: _Open | None = None
        self._tell = tell or (lambda message: None)  # told what a restart finds rotation did meanwhile
        self._left: list[_Open] | None = None  # found at the first look

    def lag(self) -> int:
        """Bytes written to the current file and not shipped yet."""
        if self._open is None:
            return 0
        return max(os.fstat(self._open.handle.fileno()).st_size - self._open.offset, 0)

    def batches(self) -> Iterator[Batch]:
        """Everything readable now, up to `max_bytes` a batch; call `shipped` after each is acknowledged.

        Each batch's range is saved in the state file before it is yielded, so that after a restart it is sent again
        exactly, however the file grew meanwhile.
        """
        while True:
            current = self._ensure_open()
            if current is None:
                return
            batch = self._resend(current) or self._read(current, final=False)
            if batch is None and self._rotated(current):
                if not self._quiet(current):
                    return  # the application may still be writing to it: its last line may be half written
                batch = self._read(current, final=True)  # a rotated file is complete: its last line may lack "\n"
                if batch is None:
                    self._let_go()
                    continue
            if batch is None:
                return
            self._checkpoints.begin(batch.file_id, batch.offset, batch.offset + len(batch.data))
            yield batch

    def shipped(self, batch: Batch, next_offset: int) -> None:
        """Ingest acknowledged the batch up to `next_offset`."""
        self._checkpoints.advance(batch.file_id, next_offset)
        if self._open is not None and self._open.file_id == batch.file_id:
            self._open.offset = next_offset

    def refused(self, batch: Batch, taken: int | None) -> None:
        """Ingest or a proxy refused the batch, having taken its lines up to `taken` (None: none of them).

        What was not taken is not resent as it was (none of it reached the analyzer), so the next try cuts it again
        at the batch size of then: what a proxy's 413 asks for. A file that rotation has already put away and ingest
        itself refused is let go (its end recorded), so that the file now at the path is shipped.
        """
        self.shipped(batch, batch.offset if taken is None else taken)
        current = self._open
        if taken is not None and current is not None and current.file_id == batch.file_id and self._rotated(current):
            self._checkpoints.advance(current.file_id, os.fstat(current.handle.fileno()).st_size)
            self._let_go()

    def replaced(self) -> bool:
        """Whether the path now names another file than the one being read: rotated away (the old one is let go,
        unread) or truncated in place. A file ingest refused is shipped no further; the next one at its path is."""
        if self._open is None:
            return True
        if self._rotated(self._open):
            self._let_go()
            return True
        file_id = file_id_of(self._open.handle)
        return file_id is not None and file_id != self._open.file_id

    def close(self) -> None:
        """Release the open files."""
        for left in self._left or []:
            left.handle.close()
        self._left = []
        self._let_go()

    def _let_go(self) -> None:
        if self._open is not None:
            self._open.handle.close()
            self._open = None

    def _left_behind(self) -> list[_Open]:
        """Files rotation took from the path while no shipper ran, with lines not shipped yet, oldest first.

        Renamed (logrotate's create, svlogd), the file keeps its identity and is found by it among the path's
        siblings. Truncated in place (copytruncate), the path's inode holds a new first line and the state an entry
        for that inode with the old one: its rest is in the copy, found by that first line and shipped under the old
        identity, so that the offsets go on. Compressed (name.2.gz, svlogd's @….s), a file has a new inode: it is
        found by its first line too, and its rest expanded. No copy found after a truncation: said, since those lines
        are lost.
        """
        known = set(self._checkpoints.offsets) | set(self._checkpoints.sending)
        if not known:
            return []
        try:
            with self.path.open("rb") as handle:
                now = os.fstat(handle.fileno())
                here = file_id_of(handle)
        except OSError:
            now, here = None, None
        inode = f"{now.st_dev}:{now.st_ino}:" if now else None
        truncated = {f for f in known if f.startswith(inode)} if inode and here and here not in known else set()
        siblings = _siblings(self.path)
        found: list[tuple[Path, str, BinaryIO]] = []  # (sibling, the identity its rest is shipped under, its bytes)
        located: set[str] = set()  # identities still held by a file as it was written
        compressed: list[Path] = []
        for sibling in siblings:
            try:
                stat = sibling.stat()
                if now is not None and (stat.st_dev, stat.st_ino) == (now.st_dev, now.st_ino):
                    continue  # another name of the file at the path
                if _gzipped(sibling):
                    compressed.append(sibling)
                    continue
                if not truncated and not any(f.startswith(f"{stat.st_dev}:{stat.st_ino}:") for f in known):
                    continue
                handle = sibling.open("rb")
            except FileNotFoundError:  # rotated on meanwhile
                continue
            except OSError as exc:
                self._tell(f"{sibling}: cannot read it to finish a rotated file: {reason(exc)}")
                continue
            file_id = file_id_of(handle)
            heads = {f.rsplit(":", 1)[1]: f for f in truncated}  # first-line CRC → the entry of the truncated file
            if file_id in known:
                shipped_as = file_id
            elif file_id is not None and file_id.rsplit(":", 1)[1] in heads:
                shipped_as = heads[file_id.rsplit(":", 1)[1]]
                truncated.discard(shipped_as)
            else:
                handle.close()
                continue
            located.add(shipped_as)
            if stat.st_size <= self._checkpoints.get(shipped_as):
                handle.close()
                continue
            found.append((sibling, shipped_as, handle))
        # Compressing writes a new file (and then deletes the old one): found by the first line of what it holds.
        heads = {f.rsplit(":", 1)[1]: f for f in sorted(known - located - {here})}
        for sibling in compressed:
            try:
                crc = _first_line_crc(sibling)
                if crc not in heads:
                    continue
                shipped_as = heads.pop(crc)
                truncated.discard(shipped_as)
                rest = _expanded_rest(sibling, self._checkpoints.get(shipped_as))
            except FileNotFoundError:
                continue
            except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; EOFError: cut short
                why = reason(exc) if isinstance(exc, OSError) and exc.strerror else str(exc)
                self._tell(f"{sibling}: cannot read it to finish a rotated file: {why}")
                continue
            if rest is not None:
                found.append((sibling, shipped_as, rest))
        left: list[_Open] = []
        for sibling, shipped_as, content in sorted(found, key=lambda entry: siblings.index(entry[0])):
            offset = self._checkpoints.get(shipped_as)
            self._tell(f"{sibling}: rotated while no shipper ran; shipping its rest first (from offset {offset})")
            left.append(_Open(self.path, content, shipped_as, offset, left=True))
        for file_id in sorted(truncated):
            self._tell(
                f"{self.path}: truncated while no shipper ran, and no copy of it beside it: lines written after offset "
                f"{self._checkpoints.get(file_id)} before the truncation were not shipped"
            )
        return left

    def _ensure_open(self) -> _Open | None:
        if self._left is None:
            self._left = self._left_behind()
        if self._open is None and self._left:
            self._open = self._left.pop(0)
        if self._open is None:
            try:
                handle = self.path.open("rb")
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise LogFileError(f"{self.path}: cannot read it: {reason(exc)}") from None
            file_id = file_id_of(handle)
            if file_id is None:  # no complete first line yet
                handle.close()
                return None
            self._open = _Open(self.path, handle, file_id, self._checkpoints.get(file_id))
        # Another tailer may ship the same file under a second name (overlapping globs, a rotated name): follow it.
        self._open.offset = max(self._open.offset, self._checkpoints.get(self._open.file_id))
        if self._open.left:
            return self._open  # a finished file: its identity is the one it was shipped under
        size = os.fstat(self._open.handle.fileno()).st_size
        # copytruncate: same inode, but a new first line, or shorter than what was shipped. Checking only the size
        # misses a file written past the old offset again before this look (an outage, a busy log).
        file_id = file_id_of(self._open.handle)  # the identity follows the first line
        if file_id != self._open.file_id or size < self._open.offset:
            if copy := self._copy_of(self._open):  # copytruncate while followed: the unread lines are in the copy
                self._let_go()
                self._open = copy
                return copy
            if file_id is None:
                self._let_go()
                return None
            offset = self._checkpoints.get(file_id)
            self._open.file_id, self._open.offset = file_id, offset if offset <= size else 0
        return self._open

    def _copy_of(self, current: _Open) -> _Open | None:
        """The copy copytruncate left beside the path (name.1, or name.1.gz once compressed) of the file `current` was
        reading, when it holds lines past `current`'s offset: finished first under `current`'s identity, as after a
        restart."""
        crc = current.file_id.rsplit(":", 1)[1]
        for sibling in reversed(_siblings(self.path)):  # newest first
            try:
                if _gzipped(sibling):
                    rest = _expanded_rest(sibling, current.offset) if _first_line_crc(sibling) == crc else None
                    if rest is not None:
                        return _Open(self.path, rest, current.file_id, current.offset, left=True)
                    continue
                handle = sibling.open("rb")
            except (OSError, EOFError, zlib.error):  # rotated on, unreadable or still being compressed: not this one
                continue
            file_id = file_id_of(handle)
            size = os.fstat(handle.fileno()).st_size
            if file_id is not None and file_id.rsplit(":", 1)[1] == crc and size > current.offset:
                return _Open(self.path, handle, current.file_id, current.offset, left=True)
            handle.close()
        return None

    def _resend(self, current: _Open) -> Batch | None:
        """The range a run before this one sent from here without recording the answer, byte for byte, if it is still
        there to read."""
        sending = self._checkpoints.in_flight(current.file_id)
        if sending is None or sending[0] != current.offset:
            return None
        start, end = sending
        current.handle.seek(start)
        data = current.handle.read(end - start)
        return Batch(current.path, current.file_id, start, data) if len(data) == end - start and data else None

    def _read(self, current: _Open, *, final: bool) -> Batch | None:
        current.handle.seek(current.offset)
        data = current.handle.read(self._max)
        if not data:
            return None
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) == self._max:  # one line longer than a batch: read on to its end
            data += current.handle.read(max(LONGEST_LINE - len(data), 0))
            cut = data.find(b"\n") + 1 or (len(data) if len(data) >= LONGEST_LINE else 0)  # too long: ingest judges
        if cut == 0 and not final:
            return None  # a line still being written
        return Batch(current.path, current.file_id, current.offset, data[: cut or len(data)])

    def _quiet(self, current: _Open) -> bool:
        """Whether nothing was written to the file for the grace period (its mtime: it holds across restarts)."""
        return self._grace_s <= 0 or time.time() - os.fstat(current.handle.fileno()).st_mtime >= self._grace_s

    def _rotated(self, current: _Open) -> bool:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return False  # renamed away and not recreated yet: keep the old one open
        now = os.fstat(current.handle.fileno())
        return (stat.st_dev, stat.st_ino) != (now.st_dev, now.st_ino)
