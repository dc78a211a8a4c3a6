"""`make proof`: the whole stack on this machine under load, faults and bad input, written up with plots.

    uv run python bench/proof.py                      # 2 GB, 20 engagements, every fault (about 10 minutes here)
    uv run python bench/proof.py --size-gb 0.2 --engagements 4   # a quick look

Load: generated GitLab logs of the four types for every engagement go through real `outrider ship` processes →
ingest → Kafka → analyzer → PostgreSQL while clients query the tracker's status API. Faults during that run: the
analyzer SIGKILLed and restarted, the Kafka broker and PostgreSQL restarted once each, the local Slack answering
429/500 for a minute while touchpoint reminders fall due. Then a corpus of bad input through the real ingest path,
tokens used on the wrong engagement, and the tracker API fuzzed from its OpenAPI schema. The report
(docs/proof/REPORT.md and its PNGs) states every figure against its target.
"""

import argparse
import asyncio
import gzip
import json
import os
import random
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import write  # noqa: E402  (bench/ is on sys.path)
from ingest_throughput import producer_perf  # noqa: E402
from run import measure  # noqa: E402

from outrider.devstack import ROOT, SERVICES, Kafka, Postgres, Service, free_port, metric, rss_mb  # noqa: E402
from outrider.slack_local import LocalSlack  # noqa: E402

LAYOUT = {"production_json": "gitlab-rails/production_json.log", "api_json": "gitlab-rails/api_json.log",
          "gitaly": "gitaly/current", "sidekiq": "sidekiq/current"}  # fmt: skip
ADMIN_TOKEN = "otr_proof_admin_" + secrets.token_urlsafe(16)
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LEAD_S = 5  # touchpoint reminders fall due this long before the call
REFERENCE_BYTES = 200_000_000  # the parser reference streams this much (bench/run.py's default file size)


@dataclass
class Run:
    """Everything measured, for the report."""

    started: float = field(default_factory=time.monotonic)
    events: list[tuple[float, str]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    latencies: list[tuple[float, float, int]] = field(default_factory=list)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    unexpected_exits: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return time.monotonic() - self.started

    def event(self, what: str) -> None:
        with self.lock:
            self.events.append((self.now(), what))
        print(f"[{self.now():7.1f} s] {what}", file=sys.stderr, flush=True)


async def counted_lines(dsn: str) -> dict[str, int]:
    """Lines the analyzer has stored per engagement (its chunk ledger: one row per chunk, never two)."""
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        rows = await conn.fetch("SELECT engagement_id, sum(lines)::bigint AS n FROM log_chunks GROUP BY engagement_id")
        return {str(r["engagement_id"]): int(r["n"]) for r in rows}
    finally:
        await conn.close()


def generate(home: Path, engagements: int, total_bytes: int) -> tuple[dict[int, list[Path]], int, dict[int, int]]:
    """Each engagement's four files (different seeds); their total bytes; lines per engagement."""
    each = total_bytes // (engagements * len(LAYOUT))
    files: dict[int, list[Path]] = {}
    lines: dict[int, int] = {}
    size = 0
    for e in range(engagements):
        files[e] = []
        lines[e] = 0
        for i, (log_type, rel) in enumerate(LAYOUT.items()):
            path = write(home / "logs" / f"e{e:02d}" / rel, log_type, each, seed=1000 * e + i)
            data = path.read_bytes()
            files[e].append(path)
            lines[e] += data.count(b"\n")
            size += len(data)
    return files, size, lines


class Stack:
    """PostgreSQL, Kafka, the local Slack and the four services, with what the faults need."""

    def __init__(self, home: Path, run: Run) -> None:
        self.home, self.run = home, run
        self.pg = Postgres(home / "pg")
        self.kafka = Kafka(home / "kafka", heap="1g")
        self.slack = LocalSlack()
        self.services: dict[str, Service] = {}
        self.expected_down: set[str] = set()

    def start(self) -> None:
        self.pg.start()
        self.kafka.start()
        self.slack.start()
        env = {"OUTRIDER_KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers, "OUTRIDER_DATABASE_URL": self.pg.dsn,
               "OTEL_SDK_DISABLED": "true", "OUTRIDER_LOG_LEVEL": "WARNING", "OUTRIDER_ADMIN_TOKEN": ADMIN_TOKEN,
               "OUTRIDER_SLACK_TOKEN": "xoxb-proof", "OUTRIDER_SLACK_API_URL": self.slack.api_url,
               "OUTRIDER_TOUCHPOINT_LEAD_S": str(LEAD_S), "OUTRIDER_DISPATCH_INTERVAL_S": "0.5",
               "OUTRIDER_GAUGE_REFRESH_S": "5"}  # fmt: skip
        self.services = {n: Service(n, free_port(), env, self.home / f"{n}.log") for n in SERVICES}
        for service in self.services.values():
            service.start()
        for service in self.services.values():
            service.wait_ready(timeout=120)

    def url(self, name: str) -> str:
        return self.services[name].url

    def kill_analyzer(self) -> None:
        analyzer = self.services["analyzer"]
        self.expected_down.add("analyzer")
        assert analyzer.pid is not None
        os.kill(analyzer.pid, signal.SIGKILL)
        assert analyzer._proc is not None
        analyzer._proc.wait()
        self.run.event("analyzer SIGKILLed")
        analyzer.start()
        analyzer.wait_ready(timeout=120)
        self.expected_down.discard("analyzer")
        self.run.event("analyzer back")

    def restart_kafka(self) -> None:
        self.run.event("Kafka broker stopping")
        self.kafka.stop()
        self.kafka.start()
        self.run.event("Kafka broker back")

    def restart_postgres(self) -> None:
        self.run.event("PostgreSQL stopping")
        self.pg.stop()
        self.pg.start()
        self.run.event("PostgreSQL back")

    def watch(self) -> None:
        """A service that died on its own is a finding: restart it and say so in the report."""
        for name, service in self.services.items():
            proc = service._proc
            if proc is not None and proc.poll() is not None and name not in self.expected_down:
                self.run.unexpected_exits.append(f"{name} exited with {proc.returncode} at {self.run.now():.0f} s")
                self.run.event(f"{name} exited unexpectedly ({proc.returncode}); restarting it")
                service.start()

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()
        self.slack.stop()
        self.kafka.stop()
        self.pg.stop()


def sampler(stack: Stack, run: Run, stop: threading.Event) -> None:
    """Once a second: bytes and lines through ingest, lines stored by the analyzer, RSS of every process."""
    while not stop.is_set():
        stack.watch()
        sample: dict[str, Any] = {"t": run.now()}
        sample["ingest_bytes"] = metric(stack.url("ingest"), "outrider_ingest_bytes_total")
        sample["ingest_lines"] = metric(stack.url("ingest"), "outrider_ingest_lines_total")
        try:
            sample["counted_lines"] = sum(asyncio.run(counted_lines(stack.pg.dsn)).values())
        except (OSError, asyncpg.PostgresError, TimeoutError):
            sample["counted_lines"] = None  # PostgreSQL is restarting
        pids = {n: s.pid for n, s in stack.services.items()} | {"kafka": stack.kafka.pid}
        for name, pid in pids.items():
            current, peak = rss_mb(pid)
            sample[f"rss_{name}"] = current
            run.peak_rss_mb[name] = max(run.peak_rss_mb.get(name, 0.0), peak)
        with run.lock:
            run.samples.append(sample)
        stop.wait(1.0)


def api_load(url: str, ids: list[str], run: Run, stop: threading.Event, concurrency: int = 4) -> None:
    """Status queries from `concurrency` clients until stopped; every (time, latency, status) is kept."""

    async def client(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            begin = time.perf_counter()
            try:
                status = (await http.get(f"{url}/v1/engagements/{random.choice(ids)}/status")).status_code
            except httpx.HTTPError:
                status = 0
            with run.lock:
                run.latencies.append((run.now(), time.perf_counter() - begin, status))
            await asyncio.sleep(0.05)

    async def main() -> None:
        async with httpx.AsyncClient(timeout=30, headers=ADMIN) as http:
            await asyncio.gather(*(client(http) for _ in range(concurrency)))

    asyncio.run(main())


def ship(stack: Stack, engagement: str, token: str, files: list[Path], state: Path, run: Run) -> int:
    """One real `outrider ship tail --once`; rerun (resuming from its state file) while it gives up. Returns tries."""
    outrider = str(Path(sys.executable).parent / "outrider")
    for attempt in range(1, 11):
        done = subprocess.run(
            [outrider, "ship", "--engagement", engagement, "--url", stack.url("ingest"), "--source", "proof",
             "tail", *map(str, files), "--once", "--state", str(state)],
            env={**os.environ, "OUTRIDER_SHIP_TOKEN": token, "COLUMNS": "200"}, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode == 0:
            return attempt
        run.event(f"shipper for {engagement[:8]} exited {done.returncode}, rerun: {done.stdout[-200:].strip()}")
        time.sleep(2)
    raise RuntimeError(f"the shipper for {engagement} never finished")


def faults(stack: Stack, run: Run, kills: int, slack_at: float, slack_s: float) -> None:
    """The fault schedule, from the start of shipping: kills every 8 s, Kafka at 12 s, PostgreSQL at 30 s."""
    plan: list[tuple[float, Callable[[], None]]] = [(5 + 8 * i, stack.kill_analyzer) for i in range(kills)]
    plan += [(12, stack.restart_kafka), (30, stack.restart_postgres)]

    def slack_outage() -> None:
        run.event(f"local Slack answers 429/500 for {slack_s:.0f} s")
        stack.slack.fail_for(slack_s)

    plan.append((slack_at, slack_outage))
    begin = time.monotonic()
    for at, action in sorted(plan, key=lambda p: p[0]):
        time.sleep(max(0.0, at - (time.monotonic() - begin)))
        action()


def bad_input(stack: Stack, run: Run) -> list[dict[str, Any]]:
    """A corpus of malformed uploads through the real ingest path: what each got, and what the analyzer counted."""
    tracker, ingest = stack.url("tracker"), stack.url("ingest")
    bad = httpx.post(f"{tracker}/v1/engagements", json={"name": "bad input", "customer": "Proof"}, headers=ADMIN)
    eid = bad.raise_for_status().json()["id"]
    token = httpx.post(f"{tracker}/v1/engagements/{eid}/tokens", headers=ADMIN).json()["token"]
    other = httpx.post(f"{tracker}/v1/engagements", json={"name": "other", "customer": "Proof"}, headers=ADMIN).json()
    other_token = httpx.post(f"{tracker}/v1/engagements/{other['id']}/tokens", headers=ADMIN).json()["token"]
    good = b'{"time":"2026-11-01T10:00:00Z","controller":"Proof","action":"show","status":200,"duration_s":0.1}\n'
    cases: list[tuple[str, bytes, dict[str, str], str]] = [
        ("truncated JSON", good[:40] + b"\n", {}, eid),
        ("binary garbage", bytes(random.Random(1).randbytes(4096)).replace(b"\n", b"") + b"\n", {}, eid),
        ("invalid UTF-8", b'{"controller":"\xff\xfe","action":"x","status":200,"duration_s":0.1}\n', {}, eid),
        ("wrong types", b'{"time":12,"controller":["a"],"action":null,"status":"OK","duration_s":"slow"}\n', {}, eid),
        ("50 MB line", b'{"controller":"' + b"A" * (50 << 20) + b'"}\n', {}, eid),
        ("gzip bomb (1 GiB of newlines)", gzip.compress(b"\n" * (1 << 30), 9), {"Content-Encoding": "gzip"}, eid),
        ("broken gzip", b"\x1f\x8b\x08\x00garbage", {"Content-Encoding": "gzip"}, eid),
        ("wrong content type (PNG)", b"\x89PNG\r\n\x1a\n" + bytes(1024) + b"\n", {"Content-Type": "image/png"}, eid),
        ("another engagement's token", good, {"Authorization": f"Bearer {other_token}"}, eid),
        ("no token", good, {"Authorization": ""}, eid),
    ]
    results = []
    peak_before = rss_mb(stack.services["ingest"].pid)[1]
    for offset, (name, body, headers, engagement) in enumerate(cases):
        auth = {"Authorization": f"Bearer {token}"} | headers
        auth = {k: v for k, v in auth.items() if v}
        params = {"source": "bad", "file_id": f"case-{offset}", "log_type": "production_json"}
        answer = httpx.post(f"{ingest}/v1/engagements/{engagement}/logs", content=body, headers=auth, timeout=120,
                            params=params)  # fmt: skip
        detail = answer.json().get("detail", answer.json()) if answer.headers.get("content-type", "").startswith(
            "application/json") else answer.text[:120]  # fmt: skip
        results.append({"case": name, "status": answer.status_code, "answer": str(detail)[:160]})
    alive = all(s._proc is not None and s._proc.poll() is None for s in stack.services.values())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and metric(stack.url("analyzer"), "outrider_analyzer_bad_lines_total") < 4:
        time.sleep(0.5)
    text = httpx.get(f"{stack.url('analyzer')}/metrics").text
    bad_lines = re.findall(r'^outrider_analyzer_bad_lines_total\{reason="([^"]+)"\} (\S+)$', text, re.M)
    run.figures["bad_lines_by_reason"] = dict(bad_lines)
    run.figures["services_alive_after_bad_input"] = alive
    run.figures["ingest_peak_rss_before_after_bad_input_mb"] = (peak_before, rss_mb(stack.services["ingest"].pid)[1])
    return results


def fuzz(tracker: str, examples: int) -> tuple[int, int, list[str]]:
    """schemathesis against the tracker's own OpenAPI: (operations, calls, 5xx answers)."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(f"{tracker}/openapi.json")
    failures: list[str] = []
    calls = operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            response = case.call(base_url=tracker, headers=ADMIN)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}")

        check()
        operations += 1
    return operations, calls, failures


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1] if len(values) >= 2 else (values[0] if values else 0.0)


def plots(run: Run, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def mark(ax: Any) -> None:
        for t, what in run.events:
            if "SIGKILL" in what or "stopping" in what or "Slack" in what:
                ax.axvline(t, color="red" if "SIGKILL" in what else "orange", alpha=0.4, lw=1)

    t = [s["t"] for s in run.samples]
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(t, [s["ingest_lines"] / 1e6 for s in run.samples], label="accepted by ingest (Kafka acked)")
    ax.plot(t, [s["counted_lines"] / 1e6 if s["counted_lines"] is not None else float("nan") for s in run.samples],
            label="stored by the analyzer")  # fmt: skip
    ax.set(xlabel="seconds", ylabel="million lines", title="Lines through the pipeline (red: analyzer SIGKILL; "
           "orange: broker/PostgreSQL restart, Slack outage)")  # fmt: skip
    mark(ax)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "lines.png", dpi=100)

    fig, ax = plt.subplots(figsize=(10, 4))
    ok = [(t, lat * 1000) for t, lat, status in run.latencies if status == 200]
    ax.scatter([p[0] for p in ok], [p[1] for p in ok], s=2, alpha=0.4)
    ax.set(xlabel="seconds", ylabel="ms", yscale="log", title="GET /v1/engagements/{id}/status latency under load")
    mark(ax)
    fig.tight_layout()
    fig.savefig(out / "api_latency.png", dpi=100)

    fig, ax = plt.subplots(figsize=(10, 4))
    for name in [*SERVICES, "kafka"]:
        ax.plot(t, [s.get(f"rss_{name}", 0) for s in run.samples], label=name)
    ax.set(xlabel="seconds", ylabel="MB", title="Resident memory per process")
    mark(ax)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "rss.png", dpi=100)
    plt.close("all")


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def report(run: Run, out: Path, args: argparse.Namespace, bad: list[dict[str, Any]]) -> None:
    f = run.figures
    rss_before, rss_after = f["ingest_peak_rss_before_after_bad_input_mb"]
    kills = [t for t, what in run.events if what == "analyzer SIGKILLed"]
    backs = [t for t, what in run.events if what == "analyzer back"]
    restart_s = [b - k for k, b in zip(kills, backs, strict=False)]
    lines = [
        "# Outrider proof: load, faults and bad input on one machine",
        "",
        f"Produced by `make proof` (`uv run python bench/proof.py --size-gb {args.size_gb} --engagements "
        f"{args.engagements}`) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, in "
        f"{f['wall_s'] / 60:.1f} minutes unattended (target < 20: {verdict(f['wall_s'] < 1200)})."
        " Every process is real: Kafka (KRaft) and PostgreSQL run from their own binaries;"
        " Slack is the local Web API stand-in.",
        "",
        "## Load",
        "",
        f"{f['bytes'] / 1e9:.2f} GB of generated GitLab logs ({f['lines']:,} lines; production_json, api_json, Gitaly "
        f"and Sidekiq) for {args.engagements} engagements, shipped by {args.engagements} `outrider ship --once` runs "
        f"(4 at a time) while 4 clients queried the status API.",
        "",
        "| stage | sustained | over |",
        "|---|---:|---|",
        f"| shipper → ingest → Kafka (acknowledged) | {f['ship_mb_s']:.1f} MB/s, {f['ship_lines_s']:,.0f} lines/s | "
        f"{f['ship_s']:.1f} s, faults included |",
        f"| → analyzer → PostgreSQL (stored) | {f['count_mb_s']:.1f} MB/s, {f['count_lines_s']:,.0f} lines/s | "
        f"{f['count_s']:.1f} s from the first upload to the last line stored |",
        f"| last line visible in the API after the last upload was acknowledged | {f['visible_after_s']:.1f} s | |",
        "",
        f"Status API under that load: {f['api_calls']:,} calls, p50 {f['api_p50_ms']:.1f} ms, p99 "
        f"{f['api_p99_ms']:.1f} ms, {f['api_errors']} non-200 (answers during the PostgreSQL restart included).",
        "",
        "| process | peak RSS (MB) |",
        "|---|---:|",
        *[f"| {name} | {mb:,.0f} |" for name, mb in sorted(run.peak_rss_mb.items())],
        "",
        "![lines](lines.png)",
        "",
        "![api latency](api_latency.png)",
        "",
        "![rss](rss.png)",
        "",
        "## Faults during the load (the run's timeline)",
        "",
        *[f"- {t:6.1f} s: {what}" for t, what in run.events if not what.startswith("shipper")],
        "",
        "| check | result |",
        "|---|---|",
        f"| lines shipped vs lines stored (all engagements) | {f['lines']:,} vs {f['counted']:,}: "
        f"{verdict(f['lines'] == f['counted'])} (equal) |",
        f"| engagements whose counts differ | {f['mismatched'] or 'none'} |",
        f"| shipper reruns after giving up during an outage | {f['ship_reruns']} |",
        f"| reminders due vs delivered | {f['reminders_due']} vs {f['reminders_delivered']}: "
        f"{verdict(f['reminders_due'] == f['reminders_delivered'])} (equal) |",
        f"| reminders posted twice | {f['reminders_doubled'] or 'none'} |",
        f"| Slack requests refused during the outage, then retried | {f['slack_requests'] - f['slack_messages']} |",
        f"| services that died on their own | {', '.join(run.unexpected_exits) or 'none'} |",
        "",
        f"Each analyzer restart took {min(restart_s, default=0):.1f} to {max(restart_s, default=0):.1f} s from SIGKILL"
        " to ready (Python start-up, migrations check, consumer-group rejoin); with kills that close together it stores"
        " little between them, then catches up at its steady rate once left alone (see the plot). Nothing is lost"
        " either way: the batch in flight is re-read and its chunk ids drop what was already stored.",
        "",
        "## Bad input through the real ingest path",
        "",
        "| input | HTTP status | answer |",
        "|---|---:|---|",
        *[f"| {b['case']} | {b['status']} | {b['answer'].replace('|', '/')} |" for b in bad],
        "",
        f"Lines the analyzer refused, by reason: {f['bad_lines_by_reason'] or 'none'}. Every service was still running "
        f"afterwards: {verdict(f['services_alive_after_bad_input'])}. Peak RSS of ingest before and after the corpus: "
        f"{rss_before:.0f} → {rss_after:.0f} MB (the 50 MB line and the 1 GiB gzip bomb are refused as they stream,"
        " not buffered).",
        "",
        f"Tracker API fuzzed from its OpenAPI schema (schemathesis, {args.fuzz_examples} examples per operation): "
        f"{f['fuzz_operations']} operations, {f['fuzz_calls']:,} calls, 5xx answers: "
        f"{', '.join(f['fuzz_failures']) or 'none'} ({verdict(not f['fuzz_failures'])}).",
        "",
        "## Against the targets of the earlier issues (measured in this run, on this machine)",
        "",
        "| target | measured | |",
        "|---|---|---|",
        f"| logparse ≥ 20x the pure-Python baseline per core (#3) | {f['parser_ratio']:.1f}x ({f['rust_mb_s']:.0f} vs "
        f"{f['python_mb_s']:.0f} MB/s, one core, production_json streamed to ~200 MB) | "
        f"{verdict(f['parser_ratio'] >= 20)} |",
        f"| logparse ≥ 400 MB/s per core on production_json (#3) | {f['rust_mb_s']:.0f} MB/s | "
        f"{verdict(f['rust_mb_s'] >= 400)} |",
        f"| shipper path ≥ 50% of Kafka producer-perf (#4) | {f['ship_mb_s']:.1f} of {f['perf_mb_s']:.1f} MB/s = "
        f"{f['ship_ratio']:.0%} here, under faults and with the analyzer and API load sharing the cores | "
        f"{verdict(f['ship_ratio'] >= 0.5)} |",
        f"| analyzer ≥ 60% of logparse alone (#5) | {f['count_mb_s']:.1f} of {f['rust_mb_s']:.0f} MB/s = "
        f"{f['count_mb_s'] / f['rust_mb_s']:.0%}, under faults | {verdict(f['count_mb_s'] >= 0.6 * f['rust_mb_s'])} |",
        f"| lines shipped = lines counted (#2, #5) | {f['lines']:,} = {f['counted']:,} | "
        f"{verdict(f['lines'] == f['counted'])} |",
        f"| reminders never lost, never doubled (#7) | {f['reminders_delivered']}/{f['reminders_due']}, "
        f"{len(f['reminders_doubled'])} doubled | "
        f"{verdict(f['reminders_due'] == f['reminders_delivered'] and not f['reminders_doubled'])} |",
        "",
        "The dedicated benchmarks (`bench/run.py`, `bench/ingest_throughput.py`, `bench/analyzer_e2e.py`, "
        "`bench/tracker_load.py`) measure each stage alone; the figures here are the same stages sharing two cores "
        "with everything else and with the faults, so they are lower.",
        "",
    ]
    (out / "REPORT.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gb", type=float, default=2.0, help="log volume shipped (default 2)")
    parser.add_argument("--engagements", type=int, default=20, help="engagements the logs belong to (default 20)")
    parser.add_argument("--analyzer-kills", type=int, default=5, help="SIGKILLs of the analyzer (default 5)")
    parser.add_argument("--slack-outage-s", type=float, default=60, help="seconds Slack answers 429/500 (default 60)")
    parser.add_argument("--fuzz-examples", type=int, default=10, help="schemathesis examples per operation")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "proof", help="where REPORT.md and PNGs go")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    run = Run()
    (HERE / "data").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=HERE / "data") as tmp:
        home = Path(tmp)
        run.event(f"generating {args.size_gb} GB for {args.engagements} engagements")
        files, size, lines = generate(home, args.engagements, int(args.size_gb * 1e9))
        run.figures.update(bytes=size, lines=sum(lines.values()))
        run.event("parser reference: logparse vs the pure-Python baseline, one core")
        sample = files[0][0]
        # Streamed repeatedly to ~200 MB, as bench/run.py measures: one pass of this ~25 MB file is mostly the
        # reader's start-up (its buffers, its thread), which made the reference a third of what the parser does.
        passes = -(-REFERENCE_BYTES // sample.stat().st_size)
        python = measure("python", sample, "production_json", 1, repeat=passes, trials=1)
        rust = measure("rust-exact", sample, "production_json", 1, repeat=passes, trials=1)
        run.figures.update(python_mb_s=python["bytes"] / python["seconds"] / 1e6,
                           rust_mb_s=rust["bytes"] / rust["seconds"] / 1e6)  # fmt: skip
        run.figures["parser_ratio"] = run.figures["rust_mb_s"] / run.figures["python_mb_s"]
        stack = Stack(home, run)
        stop = threading.Event()
        try:
            run.event("starting PostgreSQL, Kafka, the local Slack and the four services")
            stack.start()
            run.event("Kafka producer-perf on the same broker")
            run.figures["perf_mb_s"] = producer_perf(stack.kafka.bootstrap_servers, 300 << 20)
            tracker = stack.url("tracker")
            ids, tokens = [], []
            for e in range(args.engagements):
                body = {"name": f"Proof {e:02d}", "customer": f"Customer {e:02d}", "slack_channel": f"#proof-{e:02d}"}
                eid = httpx.post(f"{tracker}/v1/engagements", json=body, headers=ADMIN).raise_for_status().json()["id"]
                ids.append(eid)
                tokens.append(httpx.post(f"{tracker}/v1/engagements/{eid}/tokens", headers=ADMIN).json()["token"])
            # One touchpoint per engagement, their reminders falling due every 4 s from 40 s after shipping starts:
            # most of them inside the Slack outage (from 45 s), so delivery has to retry through it.
            ship_start_at = datetime.now(UTC) + timedelta(seconds=5)
            due = [ship_start_at + timedelta(seconds=40 + 4 * e) for e in range(args.engagements)]
            for e, eid in enumerate(ids):
                httpx.post(f"{tracker}/v1/engagements/{eid}/touchpoints", headers=ADMIN, json={
                    "title": f"Proof call {e:02d}", "scheduled_at": (due[e] + timedelta(seconds=LEAD_S)).isoformat(),
                }).raise_for_status()  # fmt: skip
            threads = [threading.Thread(target=sampler, args=(stack, run, stop), daemon=True),
                       threading.Thread(target=api_load, args=(tracker, ids, run, stop), daemon=True)]  # fmt: skip
            for thread in threads:
                thread.start()
            time.sleep(max(0.0, (ship_start_at - datetime.now(UTC)).total_seconds()))
            run.event("shipping starts")
            ship_begin = time.monotonic()
            fault_thread = threading.Thread(
                target=faults, args=(stack, run, args.analyzer_kills, 45, args.slack_outage_s), daemon=True
            )
            fault_thread.start()
            with ThreadPoolExecutor(4) as pool:
                tries = list(pool.map(lambda e: ship(stack, ids[e], tokens[e], files[e], home / f"state-{e}.json", run),
                                      range(args.engagements)))  # fmt: skip
            ship_s = time.monotonic() - ship_begin
            run.event("every shipper done (all uploads acknowledged)")
            shipped_at = time.monotonic()
            expected = {ids[e]: lines[e] for e in range(args.engagements)}
            deadline = time.monotonic() + 900
            while True:
                try:
                    counted = asyncio.run(counted_lines(stack.pg.dsn))
                except (OSError, asyncpg.PostgresError, TimeoutError):
                    counted = {}
                if all(counted.get(k, 0) >= v for k, v in expected.items()) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            # The API shows it: each engagement's status counts requests from its logs.
            visible = all(httpx.get(f"{tracker}/v1/engagements/{i}/status", headers=ADMIN).json()["requests_counted"]
                          > 0 for i in ids)  # fmt: skip
            counted_s = time.monotonic() - ship_begin
            visible_after = time.monotonic() - shipped_at
            run.event(f"last line stored and visible in the API: {visible}")
            fault_thread.join()
            last_due = max(due)
            while datetime.now(UTC) < last_due + timedelta(seconds=args.slack_outage_s + 60):
                titles = [m.get("text", "") for m in stack.slack.messages]
                if all(any(f"Proof call {e:02d}" in t for t in titles) for e in range(args.engagements)):
                    break
                time.sleep(1)
            time.sleep(3)  # a late duplicate would show up now
            titles = [m.get("text", "") for m in stack.slack.messages]
            per_call = {e: sum(f"Proof call {e:02d}" in t for t in titles) for e in range(args.engagements)}
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            run.event("bad input corpus")
            bad = bad_input(stack, run)
            run.event("fuzzing the tracker API")
            operations, calls, failures = fuzz(tracker, args.fuzz_examples)
            ok = [lat * 1000 for _, lat, status in run.latencies if status == 200]
            run.figures.update(
                ship_s=ship_s, ship_mb_s=size / ship_s / 1e6, ship_lines_s=sum(lines.values()) / ship_s,
                ship_ratio=size / ship_s / 1e6 / run.figures["perf_mb_s"], count_s=counted_s,
                count_mb_s=size / counted_s / 1e6, count_lines_s=sum(lines.values()) / counted_s,
                visible_after_s=visible_after, counted=sum(counted.get(i, 0) for i in ids),
                mismatched=[f"{i[:8]}: {expected[i]} vs {counted.get(i, 0)}" for i in ids
                            if expected[i] != counted.get(i, 0)],
                ship_reruns=sum(tries) - len(tries), api_calls=len(run.latencies), api_p50_ms=pct(ok, 50),
                api_p99_ms=pct(ok, 99), api_errors=sum(status != 200 for _, _, status in run.latencies),
                reminders_due=args.engagements, reminders_delivered=sum(n >= 1 for n in per_call.values()),
                reminders_doubled=[f"Proof call {e:02d} x{n}" for e, n in per_call.items() if n > 1],
                slack_requests=stack.slack.requests, slack_messages=len(stack.slack.messages),
                fuzz_operations=operations, fuzz_calls=calls, fuzz_failures=failures,
            )  # fmt: skip
        finally:
            stop.set()
            stack.stop()
    run.figures["wall_s"] = run.now()
    plots(run, args.out)
    report(run, args.out, args, bad)
    (args.out / "figures.json").write_text(json.dumps(run.figures, indent=2, default=str))
    print(f"wrote {args.out / 'REPORT.md'} in {run.figures['wall_s'] / 60:.1f} minutes", file=sys.stderr)


if __name__ == "__main__":
    main()
