"""Kafka TLS/SASL settings reach every client the services and the CLI make, and topics are made as configured."""

import json
import logging
import os
import ssl
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import certifi
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import InvalidReplicationFactorError
from faststream.kafka.security import parse_security
from pydantic import ValidationError

from outrider import deadletters
from outrider_analyzer.handlers import rereader
from outrider_common.kafka import MAX_RECORD_BYTES, broker_security, client_options, ensure_topics
from outrider_common.outbox import Relay
from outrider_common.settings import KafkaSettings

SASL = {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "outrider", "kafka_sasl_password": "s3cret"}  # fmt: skip


def settings(**fields: Any) -> KafkaSettings:
    return KafkaSettings(kafka_bootstrap_servers="kafka-1:9093", **fields)


@pytest.mark.parametrize(
    ("protocol", "mechanism", "tls", "sasl"),
    [
        ("PLAINTEXT", "PLAIN", False, False),
        ("SSL", "PLAIN", True, False),
        ("SASL_PLAINTEXT", "PLAIN", False, True),
        ("SASL_PLAINTEXT", "SCRAM-SHA-256", False, True),
        ("SASL_SSL", "SCRAM-SHA-512", True, True),
    ],
)
def test_each_protocol_and_mechanism_maps_to_aiokafka_and_faststream_alike(
    protocol: str, mechanism: str, tls: bool, sasl: bool
) -> None:
    chosen = settings(kafka_security_protocol=protocol, kafka_sasl_mechanism=mechanism, kafka_sasl_username="u",
                      kafka_sasl_password="p", kafka_ssl_cafile=certifi.where())  # fmt: skip
    options = client_options(chosen)
    expected: dict[str, Any] = {"bootstrap_servers": "kafka-1:9093", "security_protocol": protocol}
    if sasl:
        expected |= {"sasl_mechanism": mechanism, "sasl_plain_username": "u", "sasl_plain_password": "p"}
    context = options.pop("ssl_context", None)
    assert options == expected
    assert isinstance(context, ssl.SSLContext) is tls
    if context:
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
    # FastStream's KafkaBroker turns `security=` into the same client arguments.
    broker = parse_security(broker_security(chosen))
    assert broker.get("security_protocol", "PLAINTEXT") == protocol
    assert {k: v for k, v in broker.items() if k.startswith("sasl")} == {
        k: v for k, v in expected.items() if k.startswith("sasl")
    }
    assert isinstance(broker.get("ssl_context"), ssl.SSLContext) is tls


def test_sasl_without_a_user_name_is_refused_when_the_settings_are_read() -> None:
    with pytest.raises(ValidationError, match="kafka_sasl_username"):
        settings(kafka_security_protocol="SASL_SSL")


def test_the_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SASL.items():
        monkeypatch.setenv(f"OUTRIDER_{name.upper()}", value)
    monkeypatch.setenv("OUTRIDER_TOPIC_PARTITIONS", "12")
    monkeypatch.setenv("OUTRIDER_TOPIC_REPLICATION_FACTOR", "3")
    read = KafkaSettings()
    assert client_options(read)["sasl_plain_password"] == "s3cret"
    assert (read.kafka_sasl_mechanism, read.topic_partitions, read.topic_replication_factor) == ("SCRAM-SHA-512", 12, 3)
    assert "s3cret" not in repr(read)


class NotStarted(Exception):
    """Raised by a client's start() in these tests, once the client is built."""


@pytest.fixture
async def built(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[Any]]:
    """Every aiokafka client started meanwhile, each stopped before it connects."""
    clients: list[Any] = []

    async def start(self: Any) -> None:
        clients.append(self)
        raise NotStarted

    for cls in (AIOKafkaProducer, AIOKafkaConsumer, AIOKafkaAdminClient):
        monkeypatch.setattr(cls, "start", start)
    yield clients
    for client in clients:
        await (client.close() if isinstance(client, AIOKafkaAdminClient) else client.stop())


def connection(client: Any) -> dict[str, Any]:
    """What a built aiokafka client will connect with."""
    inner: AIOKafkaClient = getattr(client, "client", None) or client._client
    return {"servers": inner.hosts, "protocol": inner._security_protocol, "mechanism": inner._sasl_mechanism,
            "user": inner._sasl_plain_username, "password": inner._sasl_plain_password}  # fmt: skip


WANTED = {"servers": [("kafka-1", 9093, 0)], "protocol": "SASL_PLAINTEXT", "mechanism": "SCRAM-SHA-512",
          "user": "outrider", "password": "s3cret"}  # fmt: skip


async def test_every_aiokafka_client_of_the_services_and_the_cli_connects_as_the_settings_say(
    built: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka = settings(**SASL)
    with pytest.raises(NotStarted):
        await ensure_topics(kafka, ["t"])  # the topics' admin client
    with pytest.raises(NotStarted):
        await Relay(f"sasl{uuid.uuid4().hex[:8]}", kafka, lambda t: t.name)._start_producer()  # the outbox relay
    with pytest.raises(NotStarted):
        await rereader(kafka)(TopicPartition("t", 0), 0)  # the analyzer's re-reader
    with pytest.raises(NotStarted):
        await deadletters._partitions(kafka, ["t.dead"])  # dead-letters list and replay
    with pytest.raises(NotStarted):
        async with deadletters._consumer(kafka, None):
            pass

    async def partitions(kafka: KafkaSettings, topics: list[str]) -> list[TopicPartition]:
        return [TopicPartition("t.dead", 0)]

    monkeypatch.setattr(deadletters, "_partitions", partitions)
    with pytest.raises(NotStarted):
        await deadletters._replay(kafka, ["t.dead"], None, from_start=False)  # the replay's producer
    kinds = [AIOKafkaAdminClient, AIOKafkaProducer, AIOKafkaConsumer, AIOKafkaAdminClient, AIOKafkaConsumer,
             AIOKafkaProducer]  # fmt: skip
    assert [type(c) for c in built] == kinds
    assert [connection(c) for c in built] == [WANTED] * len(built)
    assert built[-1]._max_request_size == MAX_RECORD_BYTES  # a dead letter of ingest's largest record goes back


SERVICE_BROKERS = """
import json, sys
from faststream.kafka import KafkaBroker
made = []
class Recorded(KafkaBroker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        made.append(self._connection_kwargs)
import importlib
app = importlib.import_module(f"outrider_{sys.argv[1]}.app")
app.KafkaBroker = Recorded
app.create_app()
keys = ("bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password")
print(json.dumps([{k: kwargs.get(k) for k in keys} for kwargs in made]))
"""


@pytest.mark.parametrize("service", ["ingest", "analyzer", "tracker", "notifier"])
def test_each_services_broker_connects_as_the_environment_says(service: str) -> None:
    # A process of its own, as a service has: create_app registers process-wide metrics and tracing.
    env = os.environ | {f"OUTRIDER_{k.upper()}": v for k, v in SASL.items()}
    env["OUTRIDER_KAFKA_BOOTSTRAP_SERVERS"] = "kafka-1:9093"
    answer = subprocess.run([sys.executable, "-c", SERVICE_BROKERS, service], env=env, capture_output=True,
                            text=True, check=True, timeout=120)  # fmt: skip
    assert json.loads(answer.stdout.splitlines()[-1]) == [
        {"bootstrap_servers": ["kafka-1:9093"], "security_protocol": "SASL_PLAINTEXT",
         "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "outrider", "sasl_plain_password": "s3cret"}
    ]  # fmt: skip


TOPIC_CONFIG = 1  # DescribeConfigs' config_source of a setting made on the topic itself (not inherited)


async def _described(bootstrap: str, topics: list[str]) -> dict[str, tuple[int, int, tuple[str, int]]]:
    """(partitions, replicas, (max.message.bytes, where it is set)) of each of `topics`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = {t["topic"]: t["partitions"] for t in await admin.describe_topics(topics)}
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
    finally:
        await admin.close()
    limit = {r[3]: {e[0]: (e[1], e[3]) for e in r[4]}["max.message.bytes"] for c in configs for r in c.resources}
    return {t: (len(described[t]), len(described[t][0]["replicas"]), limit[t]) for t in topics}


@pytest.mark.kafka
async def test_topics_are_made_with_the_configured_partitions_and_take_the_largest_record(
    kafka_bootstrap: str, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    kafka = KafkaSettings(kafka_bootstrap_servers=kafka_bootstrap, topic_partitions=3)
    names = [f"{topic_prefix}a", f"{topic_prefix}b"]
    await ensure_topics(kafka, names)
    with caplog.at_level(logging.WARNING, "outrider_common.kafka"):
        await ensure_topics(kafka.model_copy(update={"topic_partitions": 5}), names)  # they exist: left as they are
    assert [r.getMessage() for r in caplog.records] == [
        f"topic kept as it is topic={n} partitions=3 configured=5" for n in names
    ]
    # On the topic itself: the test broker's own message.max.bytes is 8 MiB too, a production broker's 1 MiB.
    expected = (3, 1, (str(8 * 1024 * 1024), TOPIC_CONFIG))
    assert await _described(kafka_bootstrap, names) == dict.fromkeys(names, expected)


@pytest.mark.kafka
async def test_a_topic_the_broker_refuses_to_make_fails_the_start(kafka_bootstrap: str, topic_prefix: str) -> None:
    # One broker cannot hold three replicas: said at start, not found out at the first publish.
    kafka = KafkaSettings(kafka_bootstrap_servers=kafka_bootstrap, topic_replication_factor=3)
    with pytest.raises(InvalidReplicationFactorError, match=f"{topic_prefix}c"):
        await ensure_topics(kafka, [f"{topic_prefix}c"])
