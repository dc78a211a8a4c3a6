"""Status queries under load: `GET /v1/engagements/{id}/status` with 10,000 engagements in PostgreSQL.

    uv run python bench/tracker_load.py [--engagements 10000] [--seconds 20] [--concurrency 16]

Starts a real PostgreSQL and Kafka (outrider.devstack) and one tracker process, fills the database with engagements
(each with touchpoints, a risk and checklist ticks) straight through SQL, then a Python load generator (httpx,
asyncio) asks for random engagements' status for a fixed time from another process and reports requests/s and
latency percentiles.
"""

import argparse
import asyncio
import random
import secrets
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from outrider.devstack import Kafka, Postgres, Service, free_port

ADMIN_TOKEN = "otr_bench_admin_" + secrets.token_urlsafe(16)  # the tracker's bootstrap token for this run


async def fill(dsn: str, n: int) -> list[uuid.UUID]:
    """n engagements on the GitLab playbook, each with two touchpoints, a risk and two ticked items."""
    ids = [uuid.uuid4() for _ in range(n)]
    now = datetime.now(UTC)
    engagements = [
        (i, f"engagement {k}", f"customer {k % 997}", "gitlab-reference-architecture", "discovery")
        for k, i in enumerate(ids)
    ]
    touchpoints = [(uuid.uuid4(), i, "call", now + timedelta(days=k % 60 - 30)) for k, i in enumerate(ids * 2)]
    risks = [(uuid.uuid4(), i, "capacity", "high", "high") for i in ids]
    ticks = [(i, "discovery", item, "bench") for i in ids for item in ("request_logs", "followup_touchpoint")]
    conn = await asyncpg.connect(dsn)
    try:
        for table, records, columns in (
            ("engagements", engagements, ["id", "name", "customer", "playbook_id", "stage"]),
            ("touchpoints", touchpoints, ["id", "engagement_id", "title", "scheduled_at"]),
            ("risks", risks, ["id", "engagement_id", "title", "likelihood", "impact"]),
            ("checklist_items", ticks, ["engagement_id", "stage", "item_id", "done_by"]),
        ):
            await conn.copy_records_to_table(table, records=records, columns=columns)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return ids


async def load(url: str, ids: list[uuid.UUID], seconds: float, concurrency: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            response = await client.get(f"{url}/v1/engagements/{random.choice(ids)}/status")
            latencies.append(time.perf_counter() - start)
            errors += response.status_code != 200

    async with httpx.AsyncClient(
        timeout=30, limits=httpx.Limits(max_connections=concurrency), headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engagements", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent / "data") as tmp:
        home = Path(tmp)
        pg, kafka = Postgres(home / "pg"), Kafka(home / "kafka")
        pg.start()
        kafka.start()
        env = {"OUTRIDER_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers, "OUTRIDER_DATABASE_URL": pg.dsn,
               "OTEL_SDK_DISABLED": "true", "OUTRIDER_LOG_LEVEL": "WARNING",
               "OUTRIDER_ADMIN_TOKEN": ADMIN_TOKEN}  # fmt: skip
        tracker = Service("tracker", free_port(), env, home / "tracker.log")
        try:
            tracker.start()
            tracker.wait_ready()  # migrations applied
            ids = asyncio.run(fill(pg.dsn, args.engagements))
            asyncio.run(load(tracker.url, ids, 2, args.concurrency))  # warm up
            latencies, errors = asyncio.run(load(tracker.url, ids, args.seconds, args.concurrency))
        finally:
            tracker.stop()
            kafka.stop()
            pg.stop()
    q = statistics.quantiles(latencies, n=100)
    print(f"| engagements in the database | {args.engagements:,} |")
    print(f"| load | {args.concurrency} concurrent clients for {args.seconds:.0f} s, one tracker process |")
    print(f"| status requests/s | {len(latencies) / args.seconds:,.0f} ({errors} errors) |")
    print(f"| latency p50 / p99 | {q[49] * 1000:.1f} ms / {q[98] * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
