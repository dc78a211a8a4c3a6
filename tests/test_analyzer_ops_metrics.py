"""The analyzer's metrics as alerts read them: series at zero from the start, and a lag gauge that follows the
partitions this replica owns (without Kafka: a stand-in consumer answers the offsets); its rebalance settings."""

import json
import os
import subprocess
import sys
from typing import cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import REGISTRY

from outrider_analyzer.pipeline import DRAIN_SECONDS, ConsumerLag, DrainOnRevoke, Flusher
from outrider_common.db import Database

EXPORT = """
import prometheus_client
import outrider_analyzer.app
print(prometheus_client.generate_latest().decode())
"""


def test_labelled_series_are_exported_at_zero_before_any_record() -> None:
    """`increase(x[5m]) > 0` misses the first event of a series that appears with it: each starts at zero."""
    text = subprocess.run([sys.executable, "-c", EXPORT], capture_output=True, text=True, check=True).stdout
    lines = set(text.splitlines())
    for outcome in ("counted", "duplicate", "dead_letter"):
        assert f'outrider_analyzer_chunks_total{{outcome="{outcome}"}} 0.0' in lines
    assert 'outrider_analyzer_bad_lines_total{reason="not_json"} 0.0' in lines
    assert 'outrider_analyzer_findings_total{rule="slow_endpoint"} 0.0' in lines
    assert 'outrider_analyzer_flush_step_seconds_count{step="claim"} 0.0' in lines


class StandIn:
    """The consumer calls `ConsumerLag` makes, answered from fixed offsets."""

    def __init__(self, owned: set[TopicPartition], ends: dict[TopicPartition, int]) -> None:
        self.owned, self.ends = owned, ends
        self.commits: dict[TopicPartition, int | None] = {}
        self.starts: dict[TopicPartition, int] = {}

    def assignment(self) -> set[TopicPartition]:
        return set(self.owned)

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends[tp] for tp in tps}

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.starts[tp] for tp in tps}

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.commits.get(tp)


def shown(partition: int) -> float | None:
    return REGISTRY.get_sample_value("outrider_analyzer_consumer_lag_records", {"partition": str(partition)})


async def test_lag_is_end_minus_committed_and_leaves_with_the_partition() -> None:
    p7, p8, p9 = (TopicPartition("t.logs.raw", p) for p in (7, 8, 9))
    consumer = StandIn({p7, p8, p9}, {p7: 5000, p8: 50, p9: 30})
    consumer.commits = {p7: 0, p8: 45}
    consumer.starts = {p7: 0, p8: 0, p9: 12}  # p9: never committed, 12 records gone to retention
    lag = ConsumerLag(lambda: cast(AIOKafkaConsumer, consumer))
    await lag.refresh()
    assert (shown(7), shown(8), shown(9)) == (5000, 5, 18)
    consumer.ends[p8] = 80  # 30 more records, nothing committed (PostgreSQL away): the lag grows
    await lag.refresh()
    assert shown(8) == 35

    # A revoke drops the revoked partitions' series at once (a stale 5000 would add to the new owner's in a sum).
    flusher = Flusher(
        cast(Database, None), dead_letter=None, reread=None,  # type: ignore[arg-type]  # a queue never used
        bucket_seconds=60, limits=None, wake_relay=None, max_pending_bytes=1,  # type: ignore[arg-type]
    )  # fmt: skip
    await DrainOnRevoke(flusher, lag, timeout=1.0).on_partitions_revoked({p7})
    assert shown(7) is None
    assert shown(8) == 35
    # A partition gone without the listener seeing it (a rebalance while a refresh ran) goes at the next refresh.
    consumer.owned = {p9}
    await lag.refresh()
    assert (shown(7), shown(8), shown(9)) == (None, None, 18)
    lag.forget({p9})
    assert shown(9) is None


CONSUMER_SETTINGS = """
import gc, json
from faststream.kafka import KafkaBroker
from outrider_analyzer.app import create_app

create_app()
(broker,) = [o for o in gc.get_objects() if isinstance(o, KafkaBroker)]
(subscriber,) = broker.subscribers
args = subscriber._connection_args  # what the subscriber's AIOKafkaConsumer is built with
print(json.dumps({k: args[k] for k in ("rebalance_timeout_ms", "session_timeout_ms", "heartbeat_interval_ms")}))
"""


def test_a_revoke_drains_well_within_the_rebalance_timeout() -> None:
    """The group drops a member that has not rejoined within the rebalance timeout (aiokafka's default: the session
    timeout, 10 s): a drain longer than that would make every slow rebalance a storm."""
    env = {**os.environ, "OUTRIDER_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none", "OTEL_SDK_DISABLED": "true"}
    out = subprocess.run([sys.executable, "-c", CONSUMER_SETTINGS], capture_output=True, text=True, check=True, env=env)
    consumer = json.loads(out.stdout.splitlines()[-1])
    # Heartbeats go on during the drain (aiokafka stops them only to rejoin): the session timeout need not cover it.
    assert consumer["rebalance_timeout_ms"] >= 2 * DRAIN_SECONDS * 1000
