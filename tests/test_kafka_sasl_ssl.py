"""Outrider's Kafka clients against a real broker that takes only TLS clients authenticated by SCRAM-SHA-512.

test_kafka_settings.py reads the clients' options back; here they must get through: a client that dropped the CA,
the mechanism or the password, or a setting aiokafka or FastStream read otherwise than we think, would not.
"""

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError
from faststream.kafka import KafkaBroker, KafkaMessage

from outrider.devstack import Kafka, SaslSsl
from outrider_common.kafka import broker_security, client_options, ensure_topics
from outrider_common.settings import KafkaSettings
from outrider_common.topics import DEAD_LETTER_REASON, DEAD_LETTER_SOURCE

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

USER, PASSWORD = "outrider-svc", "s3cret-scram"
OTHER, OTHER_PASSWORD = "someone-else", "other-password"
BOUND = 30  # seconds: a refused client must fail, not retry forever


def openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(home: Path) -> Path:
    """A throwaway CA in `home` (ca.pem, ca.key): its certificate path."""
    home.mkdir(parents=True)
    openssl(home, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", f"/CN=Outrider test CA {home.name}", "-addext",
            "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    return home / "ca.pem"


def make_keystore(home: Path, ca: Path) -> Path:
    """A PEM keystore (key, then certificate) for 127.0.0.1, signed by `ca`, as Kafka's ssl.keystore.type=PEM takes."""
    home.mkdir(parents=True)
    openssl(home, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")  # fmt: skip
    (home / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n"
    )
    openssl(home, "x509", "-req", "-in", "server.csr", "-CA", str(ca), "-CAkey", str(ca.with_suffix(".key")),
            "-set_serial", f"0x{uuid.uuid4().hex}", "-days", "2", "-extfile", "server.ext",
            "-out", "server.pem")  # fmt: skip
    keystore = home / "keystore.pem"
    keystore.write_text((home / "server.key").read_text() + (home / "server.pem").read_text())
    return keystore


@dataclass(frozen=True)
class SecureKafka:
    """The broker, the CA that signed its certificate, and one that did not."""

    kafka: Kafka
    ca: Path
    other_ca: Path

    def settings(self, **fields: Any) -> KafkaSettings:
        """Settings as a deployment on this broker's SASL_SSL listener would have them, changed by `fields`."""
        right: dict[str, Any] = {
            "kafka_bootstrap_servers": self.kafka.sasl_ssl_bootstrap_servers,
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": USER,
            "kafka_sasl_password": PASSWORD,
            "kafka_ssl_cafile": self.ca,
            "topic_partitions": 1,
        }
        return KafkaSettings(**right | fields)

    def env(self, **fields: Any) -> dict[str, str]:
        """The OUTRIDER_* variables of `settings(**fields)`, over this process's environment."""
        chosen = self.settings(**fields)
        variables = {f"OUTRIDER_{k.upper()}": v for k, v in chosen.model_dump(exclude={"kafka_ssl_cafile"}).items()}
        variables["OUTRIDER_KAFKA_SASL_PASSWORD"] = chosen.kafka_sasl_password.get_secret_value()
        if chosen.kafka_ssl_cafile:
            variables["OUTRIDER_KAFKA_SSL_CAFILE"] = str(chosen.kafka_ssl_cafile)
        return os.environ | {k: str(v) for k, v in variables.items()}


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    """A broker of this module's own with a SASL_SSL listener (its PLAINTEXT one: for the tests' own checks)."""
    home = tmp_path_factory.mktemp("sasl-ssl")
    ca = make_ca(home / "ca")
    listener = SaslSsl({USER: PASSWORD, OTHER: OTHER_PASSWORD}, make_keystore(home / "server", ca))
    kafka = Kafka(home / "kafka", heap="256m", sasl_ssl=listener)
    kafka.start()
    try:
        yield SecureKafka(kafka, ca, make_ca(home / "other-ca"))
    finally:
        kafka.stop()


async def partitions_of(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Over PLAINTEXT: what the broker itself holds, whatever the client under test believes."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics()).intersection(topics)
        described = await admin.describe_topics(sorted(existing)) if existing else []
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described}


async def read(options: dict[str, Any], topic: str, want: int) -> list[ConsumerRecord]:
    consumer = AIOKafkaConsumer(topic, **options, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        async with asyncio.timeout(BOUND):
            while len(records) < want:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records += batch
    finally:
        await consumer.stop()
    return records


async def test_topics_are_made_over_sasl_ssl(secure: SecureKafka, topic_prefix: str) -> None:
    names = [f"{topic_prefix}a", f"{topic_prefix}b"]
    async with asyncio.timeout(BOUND):
        await ensure_topics(secure.settings(topic_partitions=3), names)
        # Each user given at storage-format time can sign in; the topics exist now: left as they are.
        await ensure_topics(secure.settings(kafka_sasl_username=OTHER, kafka_sasl_password=OTHER_PASSWORD), names)
    assert await partitions_of(secure.kafka.bootstrap_servers, names) == dict.fromkeys(names, 3)


@pytest.mark.parametrize(
    ("wrong", "says"),
    [
        ({"kafka_sasl_password": "not-the-password"}, "SaslAuthenticationFailed.*invalid credentials"),
        ({"kafka_sasl_username": "nobody"}, "SaslAuthenticationFailed.*invalid credentials"),
        ({"kafka_sasl_mechanism": "SCRAM-SHA-256"}, "UnsupportedSaslMechanism"),
        ({"kafka_ssl_cafile": "other"}, "CERTIFICATE_VERIFY_FAILED"),
        ({"kafka_ssl_cafile": None}, "CERTIFICATE_VERIFY_FAILED"),  # the system's CAs
    ],
    ids=["password", "user", "mechanism", "another-ca", "system-cas"],
)
async def test_a_refused_client_fails_at_once_saying_why(
    secure: SecureKafka, topic_prefix: str, wrong: dict[str, Any], says: str
) -> None:
    if wrong.get("kafka_ssl_cafile") == "other":
        wrong = {"kafka_ssl_cafile": secure.other_ca}
    name = f"{topic_prefix}refused"
    # KafkaConnectionError still: the tracker retries on it, as for a broker that is away.
    with pytest.raises(KafkaConnectionError, match=f"^KafkaConnectionError: Unable to bootstrap from .*: .*{says}"):
        async with asyncio.timeout(BOUND):
            await ensure_topics(secure.settings(**wrong), [name])
    assert await partitions_of(secure.kafka.bootstrap_servers, [name]) == {}


async def send(settings: KafkaSettings, topic: str, value: bytes, **kwargs: Any) -> None:
    """One record, from a producer made of `client_options` as the services make theirs."""
    producer = AIOKafkaProducer(**client_options(settings))
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, **kwargs)
    finally:
        await producer.stop()


async def test_records_go_both_ways_between_aiokafka_and_faststream_over_sasl_ssl(
    secure: SecureKafka, topic_prefix: str
) -> None:
    settings = secure.settings()
    to_faststream, to_aiokafka = f"{topic_prefix}to-faststream", f"{topic_prefix}to-aiokafka"
    await ensure_topics(settings, [to_faststream, to_aiokafka])
    await send(settings, to_faststream, b"from aiokafka", key=b"k1")

    received: asyncio.Future[KafkaMessage] = asyncio.get_running_loop().create_future()
    # As the services build theirs: bootstrap servers and `security` only.
    broker = KafkaBroker(settings.kafka_bootstrap_servers, security=broker_security(settings))

    @broker.subscriber(to_faststream, group_id=f"{topic_prefix}g", auto_offset_reset="earliest")
    async def handle(msg: KafkaMessage) -> None:
        if not received.done():
            received.set_result(msg)

    await broker.start()
    try:
        async with asyncio.timeout(BOUND):
            got = await received
            await broker.publish(b"from faststream", to_aiokafka, key=b"k2")
    finally:
        await broker.stop()
    (back,) = await read(client_options(settings), to_aiokafka, 1)
    assert isinstance(got.raw_message, ConsumerRecord)
    assert (got.body, got.raw_message.key) == (b"from aiokafka", b"k1")
    assert (back.value, back.key) == (b"from faststream", b"k2")


def dead_letters(secure: SecureKafka, *args: str, **fields: Any) -> subprocess.CompletedProcess[str]:
    """`outrider dead-letters …` as an operator runs it, connecting as OUTRIDER_KAFKA_* say."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "outrider"), "dead-letters", *args], capture_output=True, text=True,
        env=secure.env(**fields) | {"COLUMNS": "200"}, timeout=120,
    )  # fmt: skip


async def test_the_dead_letters_cli_lists_and_replays_over_sasl_ssl(secure: SecureKafka, topic_prefix: str) -> None:
    settings = secure.settings()
    raw, dead = f"{topic_prefix}logs.raw", f"{topic_prefix}logs.raw.dead"
    await ensure_topics(settings, [raw, dead])
    headers = [(DEAD_LETTER_REASON, b"refused by PostgreSQL"), (DEAD_LETTER_SOURCE, f"{raw}/0/7".encode())]
    await send(settings, dead, b"chunk", key=b"e1", headers=headers)

    listed = await asyncio.to_thread(dead_letters, secure, "list", "logs.raw", "--json", "--topic-prefix", topic_prefix)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["topic"], row["source"], row["reason"]) == (dead, f"{raw}/0/7", "refused by PostgreSQL")
    replayed = await asyncio.to_thread(dead_letters, secure, "replay", "logs.raw", "--topic-prefix", topic_prefix)
    assert replayed.stdout.strip() == f"replayed 1 to {raw}", replayed.stdout + replayed.stderr
    (record,) = await read({"bootstrap_servers": secure.kafka.bootstrap_servers}, raw, 1)
    assert (record.value, record.key) == (b"chunk", b"e1")
    assert dict(record.headers)["dead-letter-replayed-from"] == f"{dead}/0/0".encode()

    refused = await asyncio.to_thread(
        dead_letters, secure, "list", "--topic-prefix", topic_prefix, kafka_sasl_password="not-the-password"
    )
    assert refused.returncode == 2
    said = " ".join(refused.stdout.split())  # the console wraps long lines
    assert "Unable to bootstrap" in said
    assert "SaslAuthenticationFailed" in said  # why, not only that it failed
    assert "invalid credentials" in said
