"""Settings every service shares; each service subclasses `ServiceSettings` once."""

from datetime import timedelta
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from outrider_common.topics import Topic


class KafkaSettings(BaseSettings):
    """How to reach Kafka and how to make topics: the services' and `outrider dead-letters`' (see `kafka.py`)."""

    model_config = SettingsConfigDict(env_prefix="OUTRIDER_", env_file=".env", extra="ignore")

    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How clients talk to the brokers: TLS (SSL, SASL_SSL) and SASL authentication or not."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism, with SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_username: str = Field("", description="SASL user name, with SASL_PLAINTEXT or SASL_SSL.")
    kafka_sasl_password: SecretStr = Field(SecretStr(""), description="SASL password, with SASL_PLAINTEXT or SASL_SSL.")
    kafka_ssl_cafile: Path | None = Field(
        None,
        description="CAs (PEM) that sign the brokers' certificates, with SSL or SASL_SSL; unset: the system's.",
    )
    topic_partitions: int = Field(4, gt=0, description="Partitions of each topic the services create.")
    # aiokafka speaks CreateTopics v3 at most and refuses -1 (the broker's default.replication.factor, KIP-464: v4+).
    topic_replication_factor: int = Field(
        1, gt=0, description="Replicas of each topic the services create; 1 suits a single broker only."
    )

    @model_validator(mode="after")
    def _sasl_needs_a_user(self) -> Self:
        if self.kafka_security_protocol.startswith("SASL_") and not self.kafka_sasl_username:
            raise ValueError(f"kafka_sasl_username is required with {self.kafka_security_protocol}")
        return self


class ServiceSettings(KafkaSettings):
    """Read from `OUTRIDER_*` environment variables (and a `.env` file when present)."""

    database_url: SecretStr = Field(
        SecretStr("postgresql://outrider@127.0.0.1:5432/outrider"), description="PostgreSQL DSN (asyncpg form)."
    )
    topic_prefix: str = Field("", description="Prefix for every Kafka topic name (isolates tests and tenants).")
    http_host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    http_port: int = Field(8000, description="Port of the HTTP server (/healthz, /readyz, /metrics, API).")
    log_level: str = Field("INFO", description="Python logging level.")
    outbox_retention_hours: float = Field(
        168, gt=0, description="Tracker and analyzer: how long a published outbox event is kept before it is deleted."
    )

    @property
    def outbox_retention(self) -> timedelta:
        """`outbox_retention_hours` as a duration."""
        return timedelta(hours=self.outbox_retention_hours)

    def topic(self, topic: Topic) -> str:
        """The real name of `topic` under this deployment's prefix."""
        return f"{self.topic_prefix}{topic.name}"

    def dead_letter_topic(self, topic: Topic) -> str:
        """The real name of `topic`'s dead-letter topic."""
        return f"{self.topic_prefix}{topic.dead_letter}"
