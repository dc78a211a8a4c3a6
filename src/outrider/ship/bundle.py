"""Log files inside a saved bundle (a directory or a .tar.gz, e.g. a GitLab support bundle, or one .gz log)."""

import gzip
import hashlib
import os
import shlex
import stat
import tarfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, cast

from outrider.ship.checkpoint import reason
from outrider.ship.tailer import LONGEST_LINE, log_type_of

KNOWN = ("production_json.log", "api_json.log", "current")


def _wanted(name: PurePosixPath) -> bool:
    # current files of gitaly/sidekiq, Rails JSON logs and their rotations (.1, .2.gz, svlogd's @4000….s)
    base = name.name
    return (
        base.startswith(("production_json.log", "api_json.log"))
        or (base == "current" and name.parent.name in ("gitaly", "sidekiq"))
        or (base.startswith("@4000") and name.parent.name in ("gitaly", "sidekiq"))
    )


def _log_type(name: PurePosixPath) -> str | None:
    if name.name.startswith("@4000"):
        return log_type_of(Path(name.parent) / "current")
    return log_type_of(Path(name.parent) / (name.name.split(".log")[0] + ".log" if ".log" in name.name else name.name))


HEAD = 64 << 10  # bytes of a member's content that, with its size, tell it from another file of the same name


class BundleError(Exception):
    """A bundle that cannot be read: not an archive, cut short, corrupt or unreadable."""


@dataclass(frozen=True)
class Piece:
    """Whole lines of one log file in a bundle, starting at `offset` of its uncompressed content."""

    name: str
    log_type: str | None
    file_id: str
    offset: int
    data: bytes
    read: int  # bytes of the bundle, as stored, read so far: the progress


@dataclass(frozen=True)
class _Member:
    name: str
    log_type: str | None
    size: int  # as stored (compressed for a .gz)
    raw: BinaryIO  # the stored bytes; readable only until the next member is asked for


def survey(bundle: Path, tell: Callable[[str], None] | None = None) -> tuple[int, int]:
    """(log files, their bytes as stored) in the bundle, read without keeping any of their content; `tell` hears of
    each symbolic link in a bundle directory that is not followed."""
    with _reading(bundle):
        sizes = [member.size for member in _members(bundle, tell)]
        if sizes and bundle.is_file() and not tarfile.is_tarfile(bundle):  # one .gz log: read through once, so
            with gzip.open(bundle, "rb") as content:  # one cut short is refused before anything is sent
                while content.read(1 << 20):
                    pass
    return len(sizes), sum(sizes)


def read_pieces(bundle: Path, max_bytes: int = 1 << 20) -> Iterator[Piece]:
    """Every log file of the bundle in pieces of whole lines, one member in memory at a time (a piece and the next).

    A member's file id names the bundle and the member and adds its stored size and a hash of its first 64 KiB: the
    same bundle sent again repeats its chunk ids (and counts once), while a later file under a reused name
    (logrotate's `production_json.log.2.gz` is a new file every day) is a new file.
    """
    with _reading(bundle):
        done = 0
        for member in _members(bundle):
            content = _uncompressed(member.raw)
            head = content.read(HEAD)
            digest = hashlib.blake2b(head, digest_size=8).hexdigest()
            file_id = f"bundle:{bundle.name}:{member.name}:{member.size}:{digest}"
            for offset, data in pieces(content, max_bytes, head=head):
                yield Piece(member.name, member.log_type, file_id, offset, data, done + member.raw.tell())
            done += member.size


@contextmanager
def _reading(bundle: Path) -> Iterator[None]:
    """Errors reading the bundle as BundleError, in one line that says what to do."""
    try:
        yield
    except EOFError:
        raise BundleError(f"{bundle}: cut short (its compressed data ends early); copy it again") from None
    except (tarfile.TarError, zlib.error, gzip.BadGzipFile) as exc:
        raise BundleError(f"{bundle}: corrupt ({exc})") from None
    except OSError as exc:
        raise BundleError(f"{exc.filename or bundle}: cannot read it: {reason(exc)}") from None


def _uncompressed(raw: BinaryIO) -> BinaryIO:
    head = raw.read(2)
    raw.seek(0)
    return cast(BinaryIO, gzip.GzipFile(fileobj=raw)) if head == b"\x1f\x8b" else raw


def _not_a_bundle(bundle: Path) -> BundleError:
    return BundleError(
        f"{bundle}: not a directory, a tar archive or a gzip file "
        f"(`outrider ship tail {shlex.quote(str(bundle))} --once` ships a plain log file)"
    )


def _members(bundle: Path, tell: Callable[[str], None] | None = None) -> Iterator[_Member]:
    if bundle.is_dir():
        for path in _regular_files(bundle, tell or (lambda message: None)):
            name = PurePosixPath(path.relative_to(bundle).as_posix())
            if _wanted(name):
                with _open_unfollowed(path) as raw:
                    yield _Member(str(name), _log_type(name), os.fstat(raw.fileno()).st_size, raw)
        return
    if not tarfile.is_tarfile(bundle):
        with bundle.open("rb") as raw:
            if raw.read(2) != b"\x1f\x8b":
                raise _not_a_bundle(bundle)
            raw.seek(0)
            log_type = _log_type(PurePosixPath(bundle.absolute().as_posix()))
            yield _Member(bundle.name, log_type, bundle.stat().st_size, cast(BinaryIO, raw))
        return
    with tarfile.open(bundle, "r:*") as tar:
        for info in tar:
            name = PurePosixPath(info.name)
            if info.isfile() and _wanted(name):
                handle = tar.extractfile(info)
                if handle is not None:
                    yield _Member(str(name), _log_type(name), info.size, cast(BinaryIO, handle))


def _regular_files(bundle: Path, tell: Callable[[str], None]) -> list[Path]:
    """The regular files under `bundle`, sorted. Symbolic links are not followed, to files or directories: a link such
    as `gitaly/current -> ~/.ssh/id_rsa` would ship a file from outside the bundle. Those a log may lie behind are
    told (directories, and links named as a log)."""
    found, links = [], []
    for top, dirs, files in os.walk(bundle):
        for name in dirs + files:
            path = Path(top, name)
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                if name in dirs or _wanted(PurePosixPath(path.relative_to(bundle).as_posix())):
                    links.append(path)
            elif stat.S_ISREG(mode):
                found.append(path)
    for path in sorted(links):
        tell(f"{path}: a symbolic link, not followed: only the files inside the bundle are shipped")
    return sorted(found)


def _open_unfollowed(path: Path) -> BinaryIO:
    """`path` opened for reading, refused if it became a symbolic link since it was listed."""
    return os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb")


def pieces(
    stream: BinaryIO, max_bytes: int = 1 << 20, *, head: bytes = b"", longest: int = LONGEST_LINE
) -> Iterator[tuple[int, bytes]]:
    """(offset, whole lines) of about `max_bytes` each, read from `head` and then `stream` as they are needed.

    A line longer than `longest` is sent cut there, as the tailer does, for ingest to refuse: a member without a
    newline (a gzip bomb) is never held in memory whole."""
    offset, buffer, ended = 0, head, False
    while True:
        while not ended and len(buffer) <= max_bytes:  # one byte past a piece says whether the piece is the last
            block = stream.read(max_bytes)
            ended, buffer = not block, buffer + block
        if not buffer:
            return
        end = len(buffer) if ended and len(buffer) <= max_bytes else buffer.rfind(b"\n", 0, max_bytes) + 1
        while end == 0:  # a line longer than a piece: send it whole, up to `longest`
            newline = buffer.find(b"\n", max_bytes, longest)
            if newline >= 0:
                end = newline + 1
            elif ended or len(buffer) >= longest:
                end = min(len(buffer), longest)
            else:
                block = stream.read(max_bytes)
                ended, buffer = not block, buffer + block
        yield offset, buffer[:end]
        offset, buffer = offset + end, buffer[end:]
