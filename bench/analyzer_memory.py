"""The analyzer's memory over a long run: one replica fed the same log round after round.

    uv run python bench/analyzer_memory.py [--size-mb 1000] [--rounds 14]

Starts a real Kafka broker and PostgreSQL (outrider.devstack) and one analyzer process, then writes the generated
production_json log into `logs.raw` once a round, as ingest writes it (the same ~1 MiB chunks under new offsets, so
each round is counted anew; packed before they are sent, so that each round lands as a backlog), waits until
PostgreSQL has counted the round and prints the analyzer's resident memory. The figure to read is where it levels
off.
"""

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from analyzer_e2e import chunks, produce, records, watch  # bench/ is on sys.path when this script runs
from run import ensure_data

from outrider.devstack import Kafka, Postgres, Service, free_port
from outrider_common.db import migrate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1000, help="size of the generated production_json log")
    parser.add_argument("--rounds", type=int, default=14, help="times the log is written and counted")
    args = parser.parse_args()

    data = ensure_data("production_json", args.size_mb).read_bytes()
    pieces, size = chunks(data), len(data)
    del data
    engagement = uuid.uuid4()
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent / "data") as tmp:
        home = Path(tmp)
        pg, kafka = Postgres(home / "pg", durable=True), Kafka(home / "kafka")
        pg.start()
        kafka.start()
        env = {
            "OUTRIDER_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "OUTRIDER_DATABASE_URL": pg.dsn,
            "OUTRIDER_TOPIC_PREFIX": "bench.",
            "OTEL_SDK_DISABLED": "true",
            "OUTRIDER_LOG_LEVEL": "WARNING",
        }
        analyzer = Service("analyzer", free_port(), env, home / "analyzer.log")
        try:
            migrate(pg.dsn)  # the chunk ledger exists before the first round is watched
            analyzer.start()
            print("| round | GB written so far | seconds | analyzer RSS / peak RSS, MB |\n|---:|---:|---:|---:|")
            for r in range(args.rounds):
                # Packed first, so the round is written far faster than it is read: a backlog, the worst case.
                batch = records(engagement, [(offset + r * size, piece) for offset, piece in pieces], "zstd")
                start = time.perf_counter()
                asyncio.run(produce(kafka.bootstrap_servers, "bench.logs.raw", batch))
                del batch
                end = asyncio.run(watch(pg.dsn, (r + 1) * len(pieces), lambda n: None))
                rss, peak = analyzer.rss_mb()
                print(
                    f"| {r + 1} | {(r + 1) * size / 1e9:.1f} | {end - start:.0f} | {rss:.0f} / {peak:.0f} |", flush=True
                )
        finally:
            analyzer.stop()
            kafka.stop()
            pg.stop()


if __name__ == "__main__":
    main()
