#!/usr/bin/env python3
"""Write the fuzz targets' seed corpora (fuzz/corpus/<target>/) from the log fixtures the crate's tests use.

Run from anywhere: `python3 fuzz/seed-corpus.py`. The corpus is generated, not committed (see .gitignore).
"""

import hashlib
import re
import struct
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
LOGS = FUZZ.parents[2] / "tests" / "fixtures" / "logs"
CORPUS = FUZZ / "corpus"


def put(target: str, data: bytes) -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def varint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def sketch(zero: int, lo: int, bins: list[int], vmin: float, vmax: float) -> bytes:
    """A sketch in `Sketch::to_bytes`'s format (version 1, alpha = 0.01, zigzag offset, dense bins)."""
    count = zero + sum(bins)
    return (
        bytes([1])
        + struct.pack("<d", 0.01)
        + varint(count)
        + varint(zero)
        + struct.pack("<dd", vmin, vmax)
        + varint(((lo << 1) ^ (lo >> 31)) & 0xFFFFFFFF)
        + varint(len(bins))
        + b"".join(varint(n) for n in bins)
    )


files = sorted(LOGS.glob("*.log"))
for f in files:
    data = f.read_bytes()
    for knobs in (0x00, 0x09, 0x5A, 0xF3, 0xC4, 0x2F):  # the first byte picks aggregate_feed's options
        put("aggregate_feed", bytes([knobs]) + data)
    for line in data.splitlines():
        put("aggregate_feed", bytes([0xCC]) + line)
        put("scan_agrees_with_serde", line)
        for ts in re.findall(rb"\d{4}-\d\d-\d\d[T_ ][0-9:.]+(?:Z|[+-]\d\d:?\d\d)?", line):
            put("time_parse", ts)

for s in (
    sketch(0, 0, [], 0.0, 0.0),  # empty
    sketch(1, 0, [], 0.0, 0.0),  # one zero
    sketch(0, 35, [2], 2.0, 2.0),
    sketch(1, 0, [1, 0, 0, 3], 0.0, 1.06),
    sketch(0, 100, [i % 3 for i in range(60)], 7.4, 3.0e1),  # enough bins to be dense
    sketch(0, -690, [1] + [0] * 2070 + [1], 1e-6, 1e12),  # the widest valid range
):
    put("sketch_bytes", s)
    # Also two of them back to back with the cut byte last, for the merge check.
    if len(s) < 256:
        put("sketch_bytes", s + s + bytes([len(s)]))
