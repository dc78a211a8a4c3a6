"""Shipper → ingest → Kafka throughput, beside Kafka's own producer-perf on the same broker in the same run.

    uv run python bench/ingest_throughput.py [--size-mb 200]

Starts a real Kafka broker and PostgreSQL (outrider.devstack), the tracker (for an engagement and its upload token)
and ingest; generates a production_json log; then times
  1. `kafka.tools.ProducerPerformance` (what `kafka-producer-perf-test.sh` runs): the same number of bytes in
     1 MiB records, acks=all, zstd — the broker's ceiling on this machine;
  2. `outrider ship tail FILE --once`: gzip over HTTP to ingest, cut into ~1 MiB records, idempotent acks=all zstd
     producer, answered only after Kafka acknowledged.
"""

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from generate import write  # bench/ is on sys.path when this script runs

from outrider.devstack import KAFKA_LIBS, Kafka, Postgres, Service, free_port

ADMIN_TOKEN = "otr_bench_admin_" + secrets.token_urlsafe(16)  # the tracker's bootstrap token for this run
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def producer_perf(bootstrap: str, total_bytes: int) -> float:
    """MB/s that Kafka's own producer-perf tool reaches for `total_bytes` in 1 MiB records."""
    record = 1 << 20
    java = [shutil.which("java") or "java", "-Xmx1g", "-cp", f"{KAFKA_LIBS}/*"]
    output = subprocess.run(
        [*java, "org.apache.kafka.tools.ProducerPerformance",
         "--topic", "perf", "--num-records", str(max(total_bytes // record, 1)), "--record-size", str(record),
         "--throughput", "-1", "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all",
         "compression.type=zstd", "max.request.size=8388608", "linger.ms=5", "batch.size=1048576"],
        capture_output=True, text=True, check=True, timeout=600,
    ).stdout  # fmt: skip
    final = [line for line in output.splitlines() if "records sent" in line][-1]
    return float(re.search(r"\(([\d.]+) MB/sec\)", final).group(1)) * (1 << 20) / 1e6  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent / "data") as tmp:
        home = Path(tmp)
        log = write(home / "production_json.log", "production_json", args.size_mb << 20, seed=3)
        size, lines = log.stat().st_size, log.read_bytes().count(b"\n")
        pg, kafka = Postgres(home / "pg"), Kafka(home / "kafka", heap="1g")
        pg.start()
        kafka.start()
        env = {"OUTRIDER_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers, "OUTRIDER_DATABASE_URL": pg.dsn,
               "OTEL_SDK_DISABLED": "true", "OUTRIDER_LOG_LEVEL": "WARNING",
               "OUTRIDER_ADMIN_TOKEN": ADMIN_TOKEN}  # fmt: skip
        services = [Service(n, free_port(), env, home / f"{n}.log") for n in ("tracker", "ingest")]
        try:
            for service in services:
                service.start()
                service.wait_ready()
            tracker, ingest = services
            engagement = httpx.post(
                f"{tracker.url}/v1/engagements", json={"name": "b", "customer": "b"}, headers=ADMIN
            ).json()["id"]
            token = httpx.post(f"{tracker.url}/v1/engagements/{engagement}/tokens", headers=ADMIN).json()["token"]
            reference = producer_perf(kafka.bootstrap_servers, size)
            start = time.perf_counter()
            subprocess.run(
                [str(Path(sys.executable).parent / "outrider"), "ship", "--engagement", engagement, "--url",
                 ingest.url, "tail", str(log), "--once", "--state", str(home / "state.json")],
                env={**os.environ, "OUTRIDER_SHIP_TOKEN": token}, check=True, capture_output=True, timeout=900,
            )  # fmt: skip
            elapsed = time.perf_counter() - start
        finally:
            for service in services:
                service.stop()
            kafka.stop()
            pg.stop()
    shipped = size / elapsed / 1e6
    print(f"| data | {size / 1e6:.0f} MB of production_json, {lines:,} lines |")
    print(f"| Kafka producer-perf, 1 MiB records, acks=all, zstd | {reference:.0f} MB/s |")
    print(f"| outrider ship → ingest → Kafka (acknowledged) | {shipped:.0f} MB/s, {lines / elapsed:,.0f} lines/s |")
    print(f"| shipper path / producer-perf | {100 * shipped / reference:.0f} % (target ≥ 50 %) |")


if __name__ == "__main__":
    main()
