"""The pure-Python baseline: the same per-key stats as `outrider stats`, with orjson, on one core.

Written the way a careful Python engineer would (orjson, one dict lookup per field, lists per key), so the
Rust/Python ratio measures the language and design, not a strawman.
"""

import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson


@dataclass
class KeyAcc:
    durations: list[float] = field(default_factory=list)
    failed: int = 0
    db: float = 0.0
    gitaly: float = 0.0
    redis: float = 0.0
    cpu: float = 0.0
    queue: float = 0.0


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _ms(rec: dict[str, Any], seconds: str, millis: str | None = None) -> float:
    v = _num(rec.get(seconds))
    if v is not None:
        return v * 1000
    return (_num(rec.get(millis)) or 0.0) if millis else 0.0


def _time(v: Any) -> float | None:
    if isinstance(v, str):
        try:
            return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return _num(v)


def _record(rec: dict[str, Any], log_type: str) -> tuple[str, float, bool, tuple[float, ...]] | None:
    """(key, duration ms, failed, components) or None for lines that are not requests."""
    if log_type in ("production_json", "api_json"):
        if log_type == "production_json":
            c, a = rec.get("controller"), rec.get("action")
            if not isinstance(c, str):
                return None
            key = f"{c}#{a}" if isinstance(a, str) else c
        else:
            route, method = rec.get("route"), rec.get("method")
            if not isinstance(route, str):
                return None
            key = f"{method} {route}" if isinstance(method, str) else route
        d = _num(rec.get("duration_s"))
        d = d * 1000 if d is not None else _num(rec.get("duration"))
        if d is None:
            return None
        status = _num(rec.get("status"))
        comps = (
            _ms(rec, "db_duration_s", "db"),
            _ms(rec, "gitaly_duration_s", "gitaly_duration"),
            _ms(rec, "redis_duration_s", "redis_duration_ms"),
            _ms(rec, "cpu_s"),
            _ms(rec, "queue_duration_s", "queue_duration"),
        )
        return key, d, status is not None and status >= 500, comps
    if log_type == "gitaly":
        method, code = rec.get("grpc.method"), rec.get("grpc.code")
        d = _num(rec.get("grpc.time_ms"))
        if not isinstance(method, str) or not isinstance(code, str) or d is None:
            return None
        return method, d, code != "OK", (0.0, 0.0, 0.0, _num(rec.get("command.cpu_time_ms")) or 0.0, 0.0)
    status = rec.get("job_status")
    cls = rec.get("class")
    if status not in ("done", "fail") or not isinstance(cls, str):
        return None
    d = _num(rec.get("duration_s"))
    d = d if d is not None else _num(rec.get("duration"))
    if d is None:
        return None
    comps = (
        _ms(rec, "db_duration_s", "db_duration"),
        _ms(rec, "gitaly_duration_s", "gitaly_duration"),
        _ms(rec, "redis_duration_s", "redis_duration_ms"),
        _ms(rec, "cpu_s"),
        _ms(rec, "scheduling_latency_s"),
    )
    return cls, d * 1000, status == "fail", comps


def percentile(sorted_values: list[float], p: float) -> float:
    rank = p * (len(sorted_values) - 1)
    lo, hi = math.floor(rank), math.ceil(rank)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (rank - lo)


def analyse(lines: Iterable[bytes], log_type: str) -> dict[str, Any]:
    """Per-key COUNT, RPS, P99, P95, MEDIAN, MAX, MIN, STDDEV, SCORE, %FAIL and component sums."""
    keys: dict[str, KeyAcc] = {}
    start = end = None
    bad = 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        brace = line.find(b"{")
        if brace < 0:
            bad += 1
            continue
        try:
            rec = orjson.loads(line[brace:])
        except orjson.JSONDecodeError:
            bad += 1
            continue
        if not isinstance(rec, dict):
            bad += 1
            continue
        r = _record(rec, log_type)
        if r is None:
            continue
        key, d, failed, comps = r
        t = _time(rec.get("time"))
        if t is not None:
            start = t if start is None or t < start else start
            end = t if end is None or t > end else end
        acc = keys.get(key)
        if acc is None:
            acc = keys[key] = KeyAcc()
        acc.durations.append(d)
        acc.failed += failed
        acc.db += comps[0]
        acc.gitaly += comps[1]
        acc.redis += comps[2]
        acc.cpu += comps[3]
        acc.queue += comps[4]
    span = (end - start) if start is not None and end is not None else 0.0
    stats = {}
    for key, acc in keys.items():
        v = sorted(acc.durations)
        n = len(v)
        mean = sum(v) / n
        p99 = percentile(v, 0.99)
        stats[key] = {
            "count": n,
            "rps": n / span if span > 0 else 0.0,
            "p99": p99,
            "p95": percentile(v, 0.95),
            "median": percentile(v, 0.5),
            "max": v[-1],
            "min": v[0],
            "stddev": math.sqrt(sum((x - mean) ** 2 for x in v) / n),
            "score": n * p99,
            "perc_failed": 100 * acc.failed / n,
        }
    return {"stats": stats, "bad": bad}


def main() -> None:
    path, log_type = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        result = analyse(f, log_type)
    top = sorted(result["stats"].items(), key=lambda kv: -kv[1]["score"])[:5]
    print(orjson.dumps(top, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
