"""`outrider dead-letters …`: read what the services dead-lettered and, once its cause is fixed, send it back.

Every consumer puts a record it cannot handle for good on its topic's dead-letter topic (`<topic>.dead`) with the
record's own key, value and headers plus `dead-letter-reason` and `dead-letter-source` (topic/partition/offset).
`replay` publishes such records to the topic they came from, as they were, plus `dead-letter-replayed-from` (the
dead letter's topic/partition/offset), which a record dead-lettered again keeps; chunk and event ids make a record
that was counted before count once. It remembers how far it got (a consumer group of its own), so running it again
sends only what was dead-lettered since.
"""

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.conn import collect_hosts
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from rich.table import Table

from outrider.stats.render import stdout_console
from outrider.up import stack_port
from outrider_common.kafka import MAX_RECORD_BYTES, client_options, start_admin
from outrider_common.settings import KafkaSettings
from outrider_common.topics import ALL_TOPICS, DEAD_LETTER_REASON, DEAD_LETTER_SOURCE, DEAD_LETTER_VALUE

app = typer.Typer(
    help="List the records the services dead-lettered (topic.dead) and replay them once their cause is fixed.",
    no_args_is_help=True,
)
console = stdout_console(markup=False)  # reasons and sources are data

REPLAY_GROUP = "outrider-dead-letters-replay"
REPLAYED_FROM = "dead-letter-replayed-from"


def _bootstrap(ctx: typer.Context, param: typer.CallbackParam, servers: str) -> str:
    """Bootstrap servers as aiokafka reads them (host[:port],…), refused here rather than in its traceback. Not
    given, the Kafka `outrider up` started, wherever it listens."""
    source = ctx.get_parameter_source(param.name or "")  # typer's own (vendored) click's enum: compared by name
    if source is not None and source.name == "DEFAULT" and (port := stack_port("kafka")):
        servers = f"127.0.0.1:{port}"
    try:
        collect_hosts(servers)
    except ValueError:
        raise typer.BadParameter(f"{servers!r} is not host:port[,host:port…]") from None
    return servers


def _kafka(bootstrap: str) -> KafkaSettings:
    """How to connect: `--bootstrap`, with TLS and SASL from the services' OUTRIDER_KAFKA_* variables."""
    try:
        return KafkaSettings(kafka_bootstrap_servers=bootstrap)
    except ValidationError as exc:
        console.print(f"Kafka settings: {exc}", style="red")
        raise typer.Exit(2) from None


BootstrapOpt = Annotated[
    str,
    typer.Option(
        "--bootstrap",
        envvar="OUTRIDER_KAFKA_BOOTSTRAP_SERVERS",
        callback=_bootstrap,
        help="Kafka bootstrap servers. Default: the Kafka `make up` started (its port in .outrider/stack.json), "
        "else 127.0.0.1:19092.",
    ),
]
PrefixOpt = Annotated[
    str, typer.Option("--topic-prefix", envvar="OUTRIDER_TOPIC_PREFIX", help="The deployment's topic-name prefix.")
]
TopicsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Topics whose dead letters to read, e.g. logs.raw (without prefix or .dead). Default: "
        + ", ".join(t.name for t in ALL_TOPICS),
        show_default=False,
    ),
]
ReasonOpt = Annotated[
    str | None, typer.Option("--reason", help="Only dead letters whose reason contains this text (any case).")
]


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic."""

    record: ConsumerRecord

    @property
    def headers(self) -> dict[str, str]:
        return {k: v.decode("utf-8", "replace") for k, v in self.record.headers}

    @property
    def reason(self) -> str:
        return self.headers.get(DEAD_LETTER_REASON, "")

    @property
    def source(self) -> str:
        return self.headers.get(DEAD_LETTER_SOURCE, "")

    @property
    def replayed_from(self) -> str | None:
        """The earlier dead letter (topic/partition/offset) this record was replayed from, if it was."""
        return self.headers.get(REPLAYED_FROM)

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.record.timestamp / 1000, UTC)

    def matches(self, reason: str | None) -> bool:
        return reason is None or reason.lower() in self.reason.lower()

    def row(self) -> dict[str, Any]:
        """What `list --json` prints of it."""
        return {"topic": self.record.topic, "partition": self.record.partition, "offset": self.record.offset,
                "at": self.at.isoformat(),
                "source": self.source, "reason": self.reason, "bytes": len(self.record.value or b""),
                "replayed_from": self.replayed_from}  # fmt: skip


def _dead_topics(names: Iterable[str] | None, prefix: str) -> list[str]:
    known = {t.name: t.dead_letter for t in ALL_TOPICS}
    chosen = list(names or known)
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise typer.BadParameter(f"unknown topic {', '.join(unknown)}; known: {', '.join(known)}", param_hint="TOPICS")
    return [prefix + known[n] for n in chosen]


@asynccontextmanager
async def _consumer(kafka: KafkaSettings, group: str | None) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(
        **client_options(kafka), group_id=group, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def _partitions(kafka: KafkaSettings, topics: list[str]) -> list[TopicPartition]:
    """The partitions of those of `topics` that exist (nothing has been dead-lettered to a topic not yet made)."""
    admin = await start_admin(kafka)
    try:
        existing = set(await admin.list_topics()).intersection(topics)
        described = await admin.describe_topics(sorted(existing)) if existing else []
    finally:
        await admin.close()
    return sorted(TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"])


async def _records(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], *, from_start: bool
) -> dict[TopicPartition, list[ConsumerRecord]]:
    """The records of `partitions` up to their ends as they are now, from the start or from the consumer's group's
    committed offsets."""
    consumer.assign(partitions)
    ends = await consumer.end_offsets(partitions)
    if from_start:
        await consumer.seek_to_beginning(*partitions)
    read: dict[TopicPartition, list[ConsumerRecord]] = {tp: [] for tp in partitions}
    while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
        for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
            read[tp] += [r for r in records if r.offset < ends[tp]]
    return read


async def _list(kafka: KafkaSettings, topics: list[str]) -> list[DeadLetter]:
    partitions = await _partitions(kafka, topics)
    if not partitions:  # (aiokafka: a consumer stopped without ever being assigned raises CancelledError)
        return []
    async with _consumer(kafka, None) as consumer:
        read = await _records(consumer, partitions, from_start=True)
    return [DeadLetter(r) for records in read.values() for r in records]


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except KafkaError as exc:
        console.print(f"Kafka: {exc!r}", style="red")
        raise typer.Exit(2) from exc


@app.command("list")
def list_dead_letters(
    topics: TopicsArg = None,
    reason: ReasonOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object a line instead of a table.")] = False,
    bootstrap: BootstrapOpt = "127.0.0.1:19092",
    topic_prefix: PrefixOpt = "",
) -> None:
    """Every dead letter, oldest first: when, where it is (topic/partition/offset), where it came from, why, and its
    size; for one that was replayed and dead-lettered again, the earlier dead letter it was replayed from."""
    names = _dead_topics(topics, topic_prefix)
    letters = [d for d in _run(_list(_kafka(bootstrap), names)) if d.matches(reason)]
    letters.sort(key=lambda d: (d.record.timestamp, d.record.partition, d.record.offset, d.record.topic))
    if json_out:
        sys.stdout.writelines(json.dumps(d.row()) + "\n" for d in letters)  # as it is: no console markup or emoji
        return
    if not letters:
        console.print(f"no dead letters in {', '.join(names)}")
        return
    title = f"{len(letters)} dead letter{'' if len(letters) == 1 else 's'}"
    replayed = any(d.replayed_from for d in letters)  # the column only when it says something
    again_column = ["REPLAYED FROM"] if replayed else []
    table = Table("DEAD-LETTERED", "TOPIC/PARTITION/OFFSET", "FROM", *again_column, "REASON", "BYTES", title=title)
    for d in letters:
        again = [d.replayed_from or ""] if replayed else []
        at = f"{d.record.topic}/{d.record.partition}/{d.record.offset}"  # as `replay` names it in REPLAYED FROM
        table.add_row(d.at.strftime("%Y-%m-%d %H:%M:%S"), at, d.source, *again, d.reason,
                      str(len(d.record.value or b"")))  # fmt: skip
    console.print(table)


DROPPED = ""  # in `_replay`'s counts: dead letters without their value, not sent


async def _replay(kafka: KafkaSettings, topics: list[str], reason: str | None, from_start: bool) -> dict[str, int]:
    """Send the dead letters not replayed yet back where they came from; without a `reason` filter, remember how
    far this got once Kafka acknowledged them (the replay group's offsets)."""
    sent: dict[str, int] = {}
    partitions = await _partitions(kafka, topics)
    if not partitions:
        return sent
    # As large a request as the services' own: a dead letter of ingest's largest record goes back whole.
    producer = AIOKafkaProducer(**client_options(kafka), enable_idempotence=True, max_request_size=MAX_RECORD_BYTES)
    await producer.start()
    try:
        async with _consumer(kafka, REPLAY_GROUP) as consumer:
            for tp, records in (await _records(consumer, partitions, from_start=from_start)).items():
                for record in records:
                    letter = DeadLetter(record)
                    if not letter.matches(reason):
                        continue
                    if DEAD_LETTER_VALUE in letter.headers:  # sent without its value: it would only come back here
                        sent[DROPPED] = sent.get(DROPPED, 0) + 1
                        continue
                    target = await _send_back(producer, letter)
                    sent[target] = sent.get(target, 0) + 1
                if records and reason is None:
                    await consumer.commit({tp: records[-1].offset + 1})
    finally:
        await producer.stop()
    return sent


async def _send_back(producer: AIOKafkaProducer, letter: DeadLetter) -> str:
    """Publish one dead letter to the topic it was read from, as it was, naming where it was dead-lettered."""
    record = letter.record
    target = letter.source.rsplit("/", 2)[0] if letter.source else record.topic.removesuffix(".dead")
    headers = [(k, v) for k, v in record.headers if k not in (DEAD_LETTER_REASON, DEAD_LETTER_SOURCE, REPLAYED_FROM)]
    origin = f"{record.topic}/{record.partition}/{record.offset}".encode()
    await producer.send_and_wait(target, record.value, key=record.key, headers=[*headers, (REPLAYED_FROM, origin)])
    return target


@app.command()
def replay(
    topics: TopicsArg = None,
    reason: ReasonOpt = None,
    from_start: Annotated[
        bool, typer.Option("--from-start", help="Every dead letter, not only those no run has replayed yet.")
    ] = False,
    bootstrap: BootstrapOpt = "127.0.0.1:19092",
    topic_prefix: PrefixOpt = "",
) -> None:
    """Publish dead letters to the topic they came from, as they were (fix their cause first).

    Safe to repeat: the analyzer counts a chunk once by its id; the notifier's reminders have idempotency keys, and an
    event older than one the notifier already applied to the same touchpoint, hand-off, review or stage changes
    nothing (a touchpoint.scheduled replayed after that touchpoint was cancelled or held plans no reminder).

    A run without --reason remembers how far it got: the next sends only what was dead-lettered since.
    """
    sent = _run(_replay(_kafka(bootstrap), _dead_topics(topics, topic_prefix), reason, from_start))
    if not sent:
        console.print("nothing to replay")
    for target, n in sorted(sent.items()):
        if target == DROPPED:
            console.print(f"skipped {n} without their value (too large to keep, or gone from Kafka before they were "
                          f"dead-lettered; their {DEAD_LETTER_VALUE} header says which): find them in the source "
                          "log")  # fmt: skip
        else:
            console.print(f"replayed {n} to {target}")
