"""Log files inside a saved bundle (a directory or a .tar.gz, e.g. a GitLab support bundle, or one .gz log)."""

import gzip
import shlex
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from outrider.ship.checkpoint import reason
from outrider.ship.tailer import log_type_of

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


def _unzip(data: bytes) -> bytes:
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


class BundleError(Exception):
    """A bundle that cannot be read: not an archive, cut short, corrupt or unreadable."""


def members(bundle: Path) -> Iterator[tuple[str, str | None, bytes]]:
    """(name, log type, uncompressed bytes) of every GitLab log file in the bundle; or of the one file that a
    gzip-compressed bundle of one is (a rotated `production_json.log.2.gz`), whatever its name."""
    try:
        yield from _members(bundle)
    except EOFError:
        raise BundleError(f"{bundle}: cut short (its compressed data ends early); copy it again") from None
    except (tarfile.TarError, zlib.error, gzip.BadGzipFile) as exc:
        raise BundleError(f"{bundle}: corrupt ({exc})") from None
    except OSError as exc:
        raise BundleError(f"{exc.filename or bundle}: cannot read it: {reason(exc)}") from None


def _members(bundle: Path) -> Iterator[tuple[str, str | None, bytes]]:
    if bundle.is_dir():
        for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
            name = PurePosixPath(path.relative_to(bundle).as_posix())
            if _wanted(name):
                yield str(name), _log_type(name), _unzip(path.read_bytes())
        return
    if not tarfile.is_tarfile(bundle):
        data = bundle.read_bytes()
        if data[:2] != b"\x1f\x8b":
            raise BundleError(
                f"{bundle}: not a directory, a tar archive or a gzip file "
                f"(`outrider ship tail {shlex.quote(str(bundle))} --once` ships a plain log file)"
            )
        yield bundle.name, _log_type(PurePosixPath(bundle.absolute().as_posix())), gzip.decompress(data)
        return
    with tarfile.open(bundle, "r:*") as tar:
        for info in tar:
            name = PurePosixPath(info.name)
            if info.isfile() and _wanted(name):
                handle = tar.extractfile(info)
                if handle is not None:
                    yield str(name), _log_type(name), _unzip(handle.read())


def pieces(data: bytes, max_bytes: int = 1 << 20) -> Iterator[tuple[int, bytes]]:
    """(offset, whole lines) of about `max_bytes` each."""
    start = 0
    while start < len(data):
        end = len(data) if start + max_bytes >= len(data) else data.rfind(b"\n", start, start + max_bytes) + 1
        if end <= start:  # a line longer than a piece: send it whole
            newline = data.find(b"\n", start)
            end = len(data) if newline < 0 else newline + 1
        yield start, data[start:end]
        start = end
