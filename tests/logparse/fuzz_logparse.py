"""Atheris harness: mutated GitLab log lines, as any log type, must give consistent counts and never panic.

The native code is not coverage-instrumented, so the harness mutates real fixture lines structurally (flip
bytes, truncate, splice odd JSON values in) to reach deep paths, besides feeding the raw fuzz bytes.
Run by test_fuzz.py for a few seconds; by hand: `uv run python tests/logparse/fuzz_logparse.py CORPUS_DIR`.
"""

import contextlib
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    import logparse

TYPES: list[str | None] = [None, *logparse.LOG_TYPES]
SEEDS = [
    line
    for log in sorted((Path(__file__).parent.parent / "fixtures" / "logs").glob("*.log"))
    for line in log.read_bytes().splitlines()
]
ODD_VALUES = [
    b"null", b'"x"', b"1e309", b"-1", b"0", b'"\\u0000"', b"[]", b"{}", b"true", b'"2020-01-01T00:00:00Z"',
    b"1591627050.5", b'"\xff\xfe"', b'"NaN"', b'"inf"', b"18446744073709551616", b'"\\ud800"', b'"500"', b"{",
    b'"done"', b'"fail"', b'"start"', b'"OK"', b'"production_json"',
]  # fmt: skip


def mutated_lines(fdp: atheris.FuzzedDataProvider) -> bytes:
    lines = []
    for _ in range(fdp.ConsumeIntInRange(1, 8)):
        line = bytearray(fdp.PickValueInList(SEEDS))
        for _ in range(fdp.ConsumeIntInRange(0, 4)):
            if not line:
                break
            pos = fdp.ConsumeIntInRange(0, len(line) - 1)
            op = fdp.ConsumeIntInRange(0, 3)
            if op == 0:
                line[pos] = fdp.ConsumeIntInRange(0, 255)
            elif op == 1:
                del line[pos:]
            elif op == 2:
                colon = line.find(b":", pos)
                end = min((i for i in (line.find(b",", colon), line.find(b"}", colon)) if i > colon), default=-1)
                if colon >= 0 and end > colon:
                    line[colon + 1 : end] = fdp.PickValueInList(ODD_VALUES)
            else:
                line[pos:pos] = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 16))
        lines.append(bytes(line))
    return b"\n".join(lines)


def check(data: bytes, log_type: str | None) -> None:
    chunk = logparse.parse_chunk(data, log_type=log_type, bucket_seconds=60)
    records = sum(g.count for g in chunk.groups)
    assert records + sum(chunk.bad_lines.values()) + sum(chunk.skipped.values()) == chunk.lines
    for g in chunk.groups:
        assert logparse.Sketch.from_bytes(g.sketch).count == g.count
        assert g.failed <= g.count
    assert sum(lines for _, lines, _, _ in chunk.by_type) == (chunk.lines if chunk.log_type else 0)
    assert sum(len(chunk.groups_of(t)) for t, *_ in chunk.by_type) == len(chunk.groups)
    # The CLI counts one log type, the detected one, where a chunk of several counts each line under its own.
    if log_type is None and len(chunk.by_type) > 1:
        records = sum(g.count for g in logparse.parse_chunk(data, log_type=chunk.log_type).groups)
    report = logparse.LogReport(log_type=log_type, interval_seconds=60, top=True, errors=True)
    report.feed(data)
    assert sum(k.count for k in report.key_stats()) == records
    assert sum(t.count for t in report.totals()) == records
    for dim in logparse.DIMENSIONS:
        assert sum(t.count for t in report.top(dim)) == records
    assert sum(t.count for t in report.top_totals()) == records
    assert sum(e.count for e in report.errors()) <= records
    with contextlib.suppress(ValueError):
        logparse.Sketch.from_bytes(data).quantile(0.5)


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    log_type = TYPES[fdp.ConsumeIntInRange(0, len(TYPES) - 1)]
    check(mutated_lines(fdp), log_type)
    check(data, log_type)


if __name__ == "__main__":
    atheris.Setup(sys.argv, atheris.instrument_func(one_input))
    atheris.Fuzz()
