"""Kafka helpers every service uses: client connection options from the settings, topic provisioning."""

import logging
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import KafkaConnectionError, KafkaError, NoError, TopicAlreadyExistsError, for_code
from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from outrider_common.settings import KafkaSettings

log = logging.getLogger(__name__)

# The largest record the services produce (ingest's chunks, the analyzer's dead letters: their producers'
# max_request_size); topics are made to take it, since a broker's own default (1 MiB) would refuse it.
MAX_RECORD_BYTES = 8 << 20

SASL_SECURITY = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """The keyword arguments that connect any aiokafka client (producer, consumer, admin) as `settings` say."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap_servers, "security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(cafile=settings.kafka_ssl_cafile)
    if protocol.startswith("SASL_"):
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    return options


def broker_security(settings: KafkaSettings) -> BaseSecurity | None:
    """The same as `client_options`, as FastStream's `KafkaBroker(security=...)` takes it."""
    protocol = settings.kafka_security_protocol
    tls = create_ssl_context(cafile=settings.kafka_ssl_cafile) if protocol in ("SSL", "SASL_SSL") else None
    if protocol.startswith("SASL_"):
        sasl = SASL_SECURITY[settings.kafka_sasl_mechanism]
        password = settings.kafka_sasl_password.get_secret_value()
        return sasl(settings.kafka_sasl_username, password, ssl_context=tls, use_ssl=tls is not None)
    return BaseSecurity(ssl_context=tls) if tls else None


async def _refusal(settings: KafkaSettings) -> BaseException | None:
    """Why a bootstrap server refuses this client (TLS, authentication), which aiokafka's bootstrap only logs."""
    options = client_options(settings)
    del options["bootstrap_servers"]
    for host, port, _ in collect_hosts(settings.kafka_bootstrap_servers, randomize=False):
        try:
            (await create_conn(host, port, request_timeout_ms=10_000, **options)).close()
        except (OSError, KafkaError, TimeoutError) as exc:
            return exc
    return None


async def start_admin(settings: KafkaSettings) -> AIOKafkaAdminClient:
    """A started admin client; when it cannot bootstrap, the error says why a server refused it (a wrong password
    or CA), not only "Unable to bootstrap"."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    try:
        await admin.start()  # a client that fails to bootstrap is closed by it
    except KafkaConnectionError as exc:
        await admin.close()
        if (refusal := await _refusal(settings)) is None:
            raise
        raise KafkaConnectionError(f"{exc.args[0] if exc.args else 'cannot connect'}: {refusal}") from refusal
    return admin


async def ensure_topics(settings: KafkaSettings, names: list[str]) -> None:
    """Create the topics in `names` that do not exist yet (idempotent, safe for concurrent callers).

    New topics get the configured partitions and replicas and take records of `MAX_RECORD_BYTES`; existing ones are
    left as they are.
    """
    admin = await start_admin(settings)
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            config = {"max.message.bytes": str(MAX_RECORD_BYTES)}
            new = [NewTopic(n, settings.topic_partitions, settings.topic_replication_factor, topic_configs=config)
                   for n in missing]  # fmt: skip
            response = await admin.create_topics(new)
            # aiokafka returns the broker's refusals (replicas it lacks, a policy) rather than raising them.
            for topic, code, message in response.topic_errors:
                if for_code(code) not in (NoError, TopicAlreadyExistsError):  # exists: another replica won the race
                    raise for_code(code)(f"cannot create topic {topic}: {message}")
        if kept := sorted(set(names) & existing):
            for topic in await admin.describe_topics(kept):
                if len(topic["partitions"]) != settings.topic_partitions:
                    log.warning("topic kept as it is topic=%s partitions=%d configured=%d",
                                topic["topic"], len(topic["partitions"]), settings.topic_partitions)  # fmt: skip
    finally:
        await admin.close()
