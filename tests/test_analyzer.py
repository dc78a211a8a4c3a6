"""The analyzer against real Kafka and PostgreSQL: agreement with `outrider stats`, crashes, replicas, bad records."""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

import logparse
from bench.baseline import _record
from bench.generate import write
from outrider.devstack import Service, free_port
from outrider_common.events import LogChunk
from tests.stack import ADMIN_TOKEN, as_admin, open_engagement, running_services

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
FORMATS = ("production_json", "api_json", "gitaly", "sidekiq")
SMALL_CHUNKS = {"OUTRIDER_CHUNK_BYTES": "8192"}  # many records, spread over partitions


def reference(path: Path, log_type: str) -> dict[str, list[float]]:
    """Durations per key, read by the independent pure-Python baseline (sorted)."""
    per_key: dict[str, list[float]] = defaultdict(list)
    for line in path.read_bytes().splitlines():
        start = line.find(b"{")
        if start < 0:
            continue
        try:
            rec = orjson.loads(line[start:])
        except orjson.JSONDecodeError:
            continue
        parsed = _record(rec, log_type) if isinstance(rec, dict) else None
        if parsed:
            per_key[parsed[0]].append(parsed[1])
    return {k: sorted(v) for k, v in per_key.items()}


def ship(ingest: str, engagement: str, auth: dict[str, str], path: Path, source: str, log_type: str) -> int:
    answer = httpx.post(
        f"{ingest}/v1/engagements/{engagement}/logs",
        params={"source": source, "file_id": path.name, "log_type": log_type},
        content=path.read_bytes(),
        headers=auth,
        timeout=120,
    )
    assert answer.status_code == 202, answer.text
    return int(answer.json()["lines"])


def outrider(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as users run it, holding the tests' admin token, on a wide terminal."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "outrider"), *args], capture_output=True, text=True,
        env={**os.environ, "OUTRIDER_API_TOKEN": ADMIN_TOKEN, "COLUMNS": "200"},
    )  # fmt: skip


def stats(tracker: str, engagement: str, log_type: str | None = None) -> dict:
    params = {"limit": 1000} | ({"log_type": log_type} if log_type else {})
    return as_admin.get(f"{tracker}/v1/engagements/{engagement}/stats", params=params).raise_for_status().json()


def wait_for_count(tracker: str, engagement: str, total: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    body = stats(tracker, engagement)
    while body["total_count"] < total:
        assert time.monotonic() < deadline, f"stuck at {body['total_count']} of {total}"
        time.sleep(0.3)
        body = stats(tracker, engagement)
    return body


COMPONENTS = ("db", "gitaly", "redis", "cpu", "queue")  # the CLI's mean component times; the API's `<name>_avg_ms`


def assert_percentiles(got: dict, values: list[float], where: object) -> None:
    """A stored row's p99, p95 and median within the sketch's 1 % of the exact ones of `values` (sorted)."""
    for q, name in ((0.99, "p99_ms"), (0.95, "p95_ms"), (0.5, "median_ms")):
        # A sketch answers with (nearly) a sample at rank q*(n-1); the exact value interpolates between the two
        # samples around that rank. Both must agree within the sketch's 1 %.
        rank = q * (len(values) - 1)
        low, high = values[int(rank)], values[min(int(rank) + 1, len(values) - 1)]
        assert low * 0.99 - 1e-9 <= got[name] <= high * 1.01 + 1e-9, (where, name)


def test_stored_stats_agree_with_outrider_stats(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    files = {t: write(tmp_path / f"{t}.log", t, 150_000, seed=i) for i, t in enumerate(FORMATS)}
    refs = {t: reference(p, t) for t, p in files.items()}
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "ingest", "analyzer"), settings=SMALL_CHUNKS,
    ) as svc:  # fmt: skip
        tracker, ingest = svc["tracker"].url, svc["ingest"].url
        engagement, auth = open_engagement(tracker)
        for log_type, path in files.items():
            ship(ingest, engagement, auth, path, f"host-{log_type}", log_type)
        wait_for_count(tracker, engagement, sum(len(v) for r in refs.values() for v in r.values()))
        for log_type, path in files.items():
            cli = outrider("stats", "table", "--format", "json", "--limit", "1000", "--type", log_type, str(path))
            assert cli.returncode == 0, cli.stderr
            expected = {row["key"]: row for row in json.loads(cli.stdout)["sections"][0]["rows"]}
            offline_row = next(iter(expected.values()))
            stored = {row["key"]: row for row in stats(tracker, engagement, log_type)["keys"]}
            assert stored.keys() == expected.keys() == refs[log_type].keys(), log_type
            for key, want in expected.items():
                got, values = stored[key], refs[log_type][key]
                assert (got["count"], got["perc_failed"]) == (
                    want["count"],
                    pytest.approx(want["perc_failed"], abs=1e-3),
                )
                assert got["max_ms"] == pytest.approx(want["max"], abs=1e-3)
                assert got["min_ms"] == pytest.approx(want["min"], abs=1e-3)
                assert got["stddev_ms"] == pytest.approx(want["stddev"], rel=1e-6, abs=1e-3)
                assert got["rps"] == pytest.approx(want["rps"], rel=2e-2, abs=2e-3)
                assert_percentiles(got, values, (log_type, key))
                # Component times are exact sums over the key's requests: only the CLI's rounding apart.
                components = [c for c in COMPONENTS if c in want]
                assert components, log_type
                for column in components:
                    assert got[f"{column}_avg_ms"] == pytest.approx(want[column], abs=1e-3), (key, column)
            for column in COMPONENTS:  # nonzero somewhere, or a sum lost on the way could agree by being zero
                assert column not in offline_row or any(row[column] > 0 for row in expected.values()), column

            # `outrider engagements stats`: the offline table's columns, rows and TOTAL row from the stored figures.
            live = outrider("engagements", "stats", engagement, "--tracker", tracker, "--log-type", log_type,
                            "--format", "json", "--limit", "1000", "--sort-by", "count")  # fmt: skip
            assert live.returncode == 0, live.stdout + live.stderr
            offline = json.loads(cli.stdout)["sections"][0]
            (section,) = json.loads(live.stdout)["sections"]
            assert list(section["rows"][0]) == list(offline["rows"][0])  # the same columns, in the same order
            counts = [(row["count"], row["key"]) for row in section["rows"]]
            assert counts == sorted(counts, key=lambda c: (-c[0], c[1]))
            assert {row["key"]: row["count"] for row in section["rows"]} == {
                key: row["count"] for key, row in expected.items()
            }
            want_total, got_total = offline["totals"], section["totals"]
            assert got_total["key"] == want_total["key"] == "TOTAL"
            assert (got_total["count"], got_total["max"], got_total["min"]) == (
                want_total["count"], pytest.approx(want_total["max"], abs=1e-3),
                pytest.approx(want_total["min"], abs=1e-3),
            )  # fmt: skip
            every = sorted(v for values in refs[log_type].values() for v in values)
            rank = 0.99 * (len(every) - 1)
            low, high = every[int(rank)], every[min(int(rank) + 1, len(every) - 1)]
            assert low * 0.99 - 1e-9 <= got_total["p99"] <= high * 1.01 + 1e-9, log_type
        # Without --log-type: a table each, the key column named as `outrider stats` names it.
        tables = outrider("engagements", "stats", engagement, "--tracker", tracker, "--limit", "3",
                          "--print-fields", "count,p99,fail")  # fmt: skip
        assert tables.returncode == 0, tables.stdout + tables.stderr
        for header in ("CONTROLLER", "ROUTE", "METHOD", "WORKER"):
            assert header in tables.stdout
        assert tables.stdout.count("TOTAL") == 4
        assert "P99_ms" in tables.stdout
        assert "%FAIL" in tables.stdout
        assert "RPS" not in tables.stdout
        assert "percentiles from the stored sketches (within 1 %)" in tables.stdout
        refused = outrider("engagements", "stats", engagement, "--tracker", tracker, "--sort-by", "nonsense")
        assert refused.returncode == 2
        assert "unknown field 'nonsense'" in refused.stdout


def requests(*spec: tuple[str, int, int, float, int]) -> bytes:
    """production_json lines: (controller#action, minute past 10:00, how many, duration in s, status)."""
    out = []
    for name, minute, n, duration, status in spec:
        controller, action = name.split("#")
        line = {"controller": controller, "action": action, "status": status, "duration_s": duration}
        out += [orjson.dumps({"time": f"2024-05-01T10:{minute:02d}:{i:02d}Z", **line}) for i in range(n)]
    return b"\n".join(out) + b"\n"


def test_live_compare_agrees_with_outrider_stats_compare(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    issues, blob, health = "Projects::IssuesController#index", "Projects::BlobController#show", "HealthController#ready"
    before = tmp_path / "before.log"  # one engagement over four minutes; blob only in the first two, health after
    before.write_bytes(requests(*((issues, m, 5, 0.4, 200) for m in range(4)), (blob, 0, 3, 2.0, 500),
                                (blob, 1, 3, 2.0, 200), *((health, m, 2, 0.01, 200) for m in (2, 3))))  # fmt: skip
    after = tmp_path / "after.log"  # another engagement: issues faster, no blob, a key of its own
    after.write_bytes(requests((issues, 0, 7, 0.1, 200), (health, 0, 1, 0.02, 200), ("Groups::X#y", 1, 4, 1.0, 200)))
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "ingest", "analyzer"),
    ) as svc:  # fmt: skip
        tracker, ingest = svc["tracker"].url, svc["ingest"].url
        (one, auth_one), (two, auth_two) = open_engagement(tracker, "before"), open_engagement(tracker, "after")
        ship(ingest, one, auth_one, before, "host", "production_json")
        ship(ingest, two, auth_two, after, "host", "production_json")
        wait_for_count(tracker, one, 30)
        wait_for_count(tracker, two, 12)

        offline = outrider("stats", "compare", "--format", "json", "--limit", "100", str(before), str(after))
        live = outrider("engagements", "compare", one, "..", "..", "--with", two, "--tracker", tracker,
                        "--format", "json", "--limit", "100")  # fmt: skip
        assert live.returncode == 0, live.stdout + live.stderr
        want, got = json.loads(offline.stdout)["sections"], json.loads(live.stdout)["sections"]
        assert [s["title"] for s in got] == [s["title"] for s in want] == ["In both", "Only in A (1 key)",
                                                                            "Only in B (1 key)"]  # fmt: skip
        for w, g in zip(want, got, strict=True):
            assert [r["key"] for r in g["rows"]] == [r["key"] for r in w["rows"]]
            totals = ([w["totals"]], [g["totals"]]) if w["totals"] else ([], [])
            for wr, gr in zip(w["rows"] + totals[0], g["rows"] + totals[1], strict=True):
                assert set(gr) == set(wr)
                for column, value in wr.items():
                    if column.startswith(("count", "perc_failed")):
                        assert gr[column] == pytest.approx(value, abs=1e-3), (gr["key"], column)
                    elif column.startswith(("p99", "p95", "median", "score")) and not column.endswith("_delta"):
                        # exact offline, from the sketch live: within its 1 %
                        assert gr[column] == pytest.approx(value, rel=0.01, abs=1e-6), (gr["key"], column)

        # Two time ranges of one engagement: the minutes before 10:02 against those from it on.
        split = outrider("engagements", "compare", one, "..2024-05-01T10:02Z", "2024-05-01T10:02Z..",
                         "--tracker", tracker, "--format", "json")  # fmt: skip
        assert split.returncode == 0, split.stdout + split.stderr
        both, only_a, only_b = json.loads(split.stdout)["sections"]
        assert [(r["key"], r["count_a"], r["count_b"], r["count_delta"]) for r in both["rows"]] == [(issues, 10, 10, 0)]
        assert (both["totals"]["count_a"], both["totals"]["count_b"]) == (16, 14)
        assert [(r["key"], r["count"], r["perc_failed"]) for r in only_a["rows"]] == [(blob, 6, 50.0)]
        assert [(r["key"], r["count"]) for r in only_b["rows"]] == [(health, 4)]
        table = outrider("engagements", "compare", one, "..2024-05-01T10:02Z", "2024-05-01T10:02Z..",
                         "--tracker", tracker)  # fmt: skip
        assert "Only in A (1 key)" in table.stdout
        assert "ΔP99_ms" in table.stdout
        assert "Both sides: percentiles from the stored sketches (within 1 %)." in table.stdout
        bad = outrider("engagements", "compare", one, "2024-05-01", "..", "--tracker", tracker)
        assert bad.returncode == 2
        assert "is not SINCE..UNTIL" in bad.stdout + bad.stderr


def pieces(path: Path, size: int) -> list[tuple[int, bytes]]:
    """`path` cut at line ends into pieces of about `size` bytes, each with its byte offset in the file."""
    data, out, start = path.read_bytes(), [], 0
    while start < len(data):
        end = data.find(b"\n", min(start + size, len(data) - 1)) + 1 or len(data)
        out.append((start, data[start:end]))
        start = end
    return out


def trickle(
    ingest: str, engagement: str, auth: dict[str, str], path: Path, source: str, paced: threading.Event
) -> None:
    """Ship `path` as `outrider ship` would, 64 KiB a request; a pause after each while `paced` is set."""
    for offset, piece in pieces(path, 64 << 10):
        answer = httpx.post(
            f"{ingest}/v1/engagements/{engagement}/logs", content=piece, headers=auth, timeout=120,
            params={"source": source, "file_id": path.name, "log_type": "production_json", "offset": offset},
        )  # fmt: skip
        assert answer.status_code == 202, answer.text
        if paced.is_set():
            time.sleep(0.2)


def test_killing_analyzers_mid_stream_loses_and_doubles_nothing(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    paths = [write(tmp_path / f"prod-{i}.log", "production_json", 3_000_000, seed=10 + i) for i in range(3)]
    durations: dict[str, list[float]] = defaultdict(list)
    for path in paths:
        for key, values in reference(path, "production_json").items():
            durations[key] += values
    expected = {key: sorted(values) for key, values in durations.items()}
    total = sum(len(values) for values in expected.values())
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path, settings=SMALL_CHUNKS,
        names=("tracker", "ingest", "analyzer"),
    ) as svc:  # fmt: skip
        tracker, ingest = svc["tracker"].url, svc["ingest"].url
        engagement, auth = open_engagement(tracker)
        # A second replica in the same consumer group: partitions are shared and move on every kill.
        second = Service("analyzer", free_port(), svc["analyzer"].env, tmp_path / "analyzer-2.log")
        second.start()
        second.wait_ready()
        paced = threading.Event()
        paced.set()  # the uploads go on through the kills, then send what is left at once
        with ThreadPoolExecutor(len(paths)) as pool:
            shipped = [
                pool.submit(trickle, ingest, engagement, auth, p, f"host-{i}", paced) for i, p in enumerate(paths)
            ]
            try:
                wait_for_count(tracker, engagement, 1)  # the first kill lands once counting has begun
                for victim in (svc["analyzer"], second, svc["analyzer"], second, svc["analyzer"]):
                    time.sleep(0.7)
                    # Mid-stream: lines still to count (the uploads, paced, outlast the kills by some seconds).
                    assert stats(tracker, engagement)["total_count"] < total, "the stream was over before this kill"
                    assert victim.pid is not None
                    os.killpg(victim.pid, signal.SIGKILL)  # no goodbye: whatever was in flight is cut off
                    victim.stop()
                    victim.start()
                paced.clear()
                for f in shipped:
                    f.result(timeout=120)
                body = wait_for_count(tracker, engagement, total)
                time.sleep(2)  # let any replayed batch land: a double count would show up now
                body = stats(tracker, engagement)
            finally:
                paced.clear()
                second.stop()
    assert {k["key"]: k["count"] for k in body["keys"]} == {key: len(values) for key, values in expected.items()}
    assert body["total_count"] == total
    # Sums and sketches too: a batch replayed into a sum or a sketch, but not into the count, would show here.
    for got in body["keys"]:
        values = expected[got["key"]]
        assert got["mean_ms"] == pytest.approx(sum(values) / len(values), rel=1e-9), got["key"]
        assert (got["max_ms"], got["min_ms"]) == (pytest.approx(values[-1]), pytest.approx(values[0])), got["key"]
        assert_percentiles(got, values, got["key"])


async def _send_bad_records(bootstrap: str, topic: str) -> None:
    """One record without the contract's headers, one whose value is not in the encoding its headers name, one
    whose zstd frame was damaged on the way (its content checksum no longer matches)."""
    chunk = LogChunk(engagement_id=uuid.uuid4(), source="x", file_id="f", offset=0, lines=1, encoding="zstd")
    damaged = chunk.model_copy(update={"offset": 100})
    frame = damaged.pack(b'{"controller":"A","action":"b","status":200,"duration_s":1}\n')
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}\n", headers=[("source", b"x")])
        await producer.send_and_wait(topic, b"{}\n", headers=[(k, v.encode()) for k, v in chunk.to_headers().items()])
        await producer.send_and_wait(
            topic,
            frame[:-1] + bytes([frame[-1] ^ 1]),
            headers=[(k, v.encode()) for k, v in damaged.to_headers().items()],
        )
    finally:
        await producer.stop()


async def _read_topics(bootstrap: str, prefix: str, names: tuple[str, ...]) -> dict[str, list[ConsumerRecord]]:
    """Everything on `names` once each has something, plus what arrives in the next 2 s (duplicates would)."""
    consumer = AIOKafkaConsumer(
        *(prefix + n for n in names), bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    seen: dict[str, list[ConsumerRecord]] = defaultdict(list)
    try:
        deadline = time.monotonic() + 30
        while not all(seen[n] for n in names) and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                seen[tp.topic.removeprefix(prefix)] += records
        for tp, records in (await consumer.getmany(timeout_ms=2000)).items():
            seen[tp.topic.removeprefix(prefix)] += records
    finally:
        await consumer.stop()
    return seen


def test_bad_records_go_to_the_dead_letter_topic_and_findings_are_raised_once(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    slow = b"".join(
        b'{"controller":"SlowController","action":"show","status":200,"duration_s":%d,"time":"2024-05-01T10:00:%02dZ"}\n'
        % (9 + i % 3, i)
        for i in range(30)
    )  # 30 requests of 9-11 s in one minute: p99 ~ 11 s over a 5 s limit
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "ingest", "analyzer"),
        settings={"OUTRIDER_FINDINGS": '{"slow_endpoint_p99_ms": 5000, "min_count": 20}'},
    ) as svc:  # fmt: skip
        tracker, ingest = svc["tracker"].url, svc["ingest"].url
        engagement, auth = open_engagement(tracker)
        asyncio.run(_send_bad_records(kafka_bootstrap, f"{topic_prefix}logs.raw"))
        for file_id in ("a.log", "b.log"):  # the same window twice: one finding, not two
            answer = httpx.post(
                f"{ingest}/v1/engagements/{engagement}/logs", params={"source": "h", "file_id": file_id},
                content=slow, headers=auth,
            )  # fmt: skip
            assert answer.status_code == 202
        wait_for_count(tracker, engagement, 60)
        seen = asyncio.run(_read_topics(kafka_bootstrap, topic_prefix, ("logs.raw.dead", "analysis.findings")))
    headers_bad, *values_bad = sorted(dict(d.headers)["dead-letter-reason"].decode() for d in seen["logs.raw.dead"])
    assert headers_bad.startswith("bad headers: ")
    assert "engagement_id: Field required" in headers_bad
    assert len(values_bad) == 2
    assert all(r.startswith("bad value: value is not zstd or is damaged") for r in values_bad)
    assert sum("checksum" in r.lower() for r in values_bad) == 1  # the damaged frame, caught by its checksum
    (finding,) = seen["analysis.findings"]
    body = json.loads(finding.value)
    assert (body["rule"], body["key"], body["engagement_id"]) == ("slow_endpoint", "SlowController#show", engagement)
    assert body["figures"]["p99_ms"] == pytest.approx(11_000, rel=0.01)
    # The window held 30 or 60 requests when the rule fired (the two uploads may share a batch), and it fired once.
    assert body["figures"]["count"] in (30, 60)


def test_a_flush_that_fails_is_retried_until_it_lands(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    """PostgreSQL refuses the analyzer's writes for a while: nothing is committed past them, nothing is lost."""
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    write(first, "production_json", 64 << 10, seed=11)
    write(second, "production_json", 64 << 10, seed=12)
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "ingest", "analyzer"),
    ) as svc:  # fmt: skip
        tracker, ingest = svc["tracker"].url, svc["ingest"].url
        engagement, auth = open_engagement(tracker)
        lines = ship(ingest, engagement, auth, first, "h", "production_json")
        wait_for_count(tracker, engagement, lines)
        asyncio.run(_sql(database_dsn, "ALTER TABLE log_chunks RENAME TO log_chunks_away"))
        try:
            lines += ship(ingest, engagement, auth, second, "h", "production_json")
            deadline = time.monotonic() + 60
            while svc["analyzer"].metric("outrider_analyzer_flush_failures_total") < 2:
                assert time.monotonic() < deadline, "the analyzer never tried to write the second file"
                time.sleep(0.3)
        finally:
            asyncio.run(_sql(database_dsn, "ALTER TABLE log_chunks_away RENAME TO log_chunks"))
        body = wait_for_count(tracker, engagement, lines)
        time.sleep(1.0)  # a write counted twice would show up now
        assert stats(tracker, engagement)["total_count"] == body["total_count"] == lines


def test_a_chunk_postgresql_refuses_is_dead_lettered_and_the_rest_is_counted(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    """PostgreSQL refuses one chunk's data for good (a CHECK constraint stands in for any such refusal, e.g. a value
    out of its range): that chunk goes to the dead-letter topic with its value and the reason, the chunks around it,
    written with it in the same lots, are counted, and its partition moves on."""
    log = tmp_path / "mixed.log"
    write(log, "production_json", 64 << 10, seed=13)
    lines = log.read_bytes().splitlines(keepends=True)
    poison = b'{"controller":"Poison","action":"show","status":200,"duration_s":0.1,"time":"2024-05-01T10:00:00Z"}\n'
    log.write_bytes(b"".join([*lines[:200], poison, *lines[200:]]))
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "ingest", "analyzer"), settings=SMALL_CHUNKS,
    ) as svc:  # fmt: skip
        tracker, ingest = svc["tracker"].url, svc["ingest"].url
        engagement, auth = open_engagement(tracker)
        asyncio.run(
            _sql(database_dsn, "ALTER TABLE log_stats ADD CONSTRAINT no_poison CHECK (key <> 'Poison#show') NOT VALID")
        )
        total = ship(ingest, engagement, auth, log, "h", "production_json")
        (dead,) = asyncio.run(_read_topics(kafka_bootstrap, topic_prefix, ("logs.raw.dead",)))["logs.raw.dead"]
        headers = {k: v.decode() for k, v in dead.headers}
        refused = int(headers["lines"])
        body = wait_for_count(tracker, engagement, total - refused)
        time.sleep(1.0)  # anything counted twice, or the refused chunk after all, would show up now
        assert stats(tracker, engagement)["total_count"] == body["total_count"] == total - refused
        assert svc["analyzer"].metric('outrider_analyzer_chunks_total{outcome="dead_letter"}') == 1
        # The cause fixed, the operator sends the chunk back and it is counted, once however often that is done.
        asyncio.run(_sql(database_dsn, "ALTER TABLE log_stats DROP CONSTRAINT no_poison"))
        kafka = ("--bootstrap", kafka_bootstrap, "--topic-prefix", topic_prefix)
        listed = outrider("dead-letters", "list", "logs.raw", "--json", *kafka)
        (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
        assert (row["source"], row["reason"]) == (headers["dead-letter-source"], headers["dead-letter-reason"])
        table = outrider("dead-letters", "list", *kafka).stdout
        assert "1 dead letter" in table
        assert "dead letters" not in table
        assert "CheckViolationError" in table
        assert headers["dead-letter-source"] in table
        none = outrider("dead-letters", "list", "analysis.findings", *kafka).stdout
        assert none.strip() == f"no dead letters in {topic_prefix}analysis.findings.dead"
        unknown = outrider("dead-letters", "list", "logs", *kafka)
        assert unknown.returncode == 2
        assert "unknown topic logs" in unknown.stderr
        replayed = outrider("dead-letters", "replay", *kafka)
        assert replayed.stdout.strip() == f"replayed 1 to {topic_prefix}logs.raw", replayed.stdout + replayed.stderr
        wait_for_count(tracker, engagement, total)
        assert outrider("dead-letters", "replay", *kafka).stdout.strip() == "nothing to replay"
        again = outrider("dead-letters", "replay", "--from-start", *kafka)
        assert again.stdout.strip() == f"replayed 1 to {topic_prefix}logs.raw"
        time.sleep(1.0)
        after = stats(tracker, engagement)
        assert after["total_count"] == total
        assert {k["key"]: k["count"] for k in after["keys"]}["Poison#show"] == 1
    assert 0 < refused < total
    assert headers["dead-letter-reason"].startswith("refused by PostgreSQL: CheckViolationError")
    assert "no_poison" in headers["dead-letter-reason"]
    assert "Poison#show" not in {k["key"] for k in body["keys"]}
    topic, partition, offset = headers["dead-letter-source"].rsplit("/", 2)
    assert (topic, headers["engagement_id"]) == (f"{topic_prefix}logs.raw", engagement)
    original = asyncio.run(_read_record(kafka_bootstrap, topic, int(partition), int(offset)))
    assert dead.value == original.value  # the record as it was, to be sent again once the cause is fixed
    assert logparse.parse_chunks([(dead.value, "production_json", True)], 60)[0].lines == refused


async def _read_record(bootstrap: str, topic: str, partition: int, offset: int) -> ConsumerRecord:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        return await asyncio.wait_for(consumer.getone(tp), 30)
    finally:
        await consumer.stop()


async def _sql(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def counters(url: str, name: str) -> dict[str, float]:
    """The analyzer's series of one counter, by their only label's value."""
    pattern = rf'^{name}_total\{{\w+="([^"]*)"\}} (\S+)$'
    return {label: float(v) for label, v in re.findall(pattern, httpx.get(f"{url}/metrics").text, re.M)}


def test_every_line_of_a_mixed_upload_is_counted_under_its_type_or_as_skipped(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    prod = b'{"subcomponent":"production_json","time":"2024-05-01T12:00:01Z","controller":"A","duration_s":0.1}\n'
    api = b'{"subcomponent":"api_json","time":"2024-05-01T12:00:02Z","route":"/r","method":"GET","duration_s":0.2}\n'
    odd_time = b'{"time":"2024-05-01 12:00:30 UTC","route":"/r","method":"GET","duration_s":0.1}\n'
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "ingest", "analyzer"),
    ) as svc:  # fmt: skip
        tracker, ingest, analyzer = svc["tracker"].url, svc["ingest"].url, svc["analyzer"].url
        engagement, auth = open_engagement(tracker)
        # A Helm webservice's stdout with no log type named; then the same lines named api_json, and a bad time.
        for file_id, body, log_type in [
            ("webservice-stdout", prod * 6 + api * 4, {}),
            ("api", prod * 6 + api * 4 + odd_time * 2, {"log_type": "api_json"}),
        ]:
            answer = httpx.post(
                f"{ingest}/v1/engagements/{engagement}/logs", params={"source": "pod", "file_id": file_id} | log_type,
                content=body, headers=auth,
            )  # fmt: skip
            assert answer.status_code == 202, answer.text
        body = wait_for_count(tracker, engagement, 14)
        assert {t["log_type"]: t["count"] for t in body["totals"]} == {"production_json": 6, "api_json": 8}
        assert counters(analyzer, "outrider_analyzer_lines")["api_json"] == 4 + 12
        assert counters(analyzer, "outrider_analyzer_lines")["production_json"] == 6
        assert counters(analyzer, "outrider_analyzer_skipped_lines")["other_log_type"] == 6
        assert counters(analyzer, "outrider_analyzer_bad_lines")["bad_time"] == 2
