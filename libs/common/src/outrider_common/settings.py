"""Settings every service shares; each service subclasses `ServiceSettings` once."""

from datetime import timedelta

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from outrider_common.topics import Topic


class ServiceSettings(BaseSettings):
    """Read from `OUTRIDER_*` environment variables (and a `.env` file when present)."""

    model_config = SettingsConfigDict(env_prefix="OUTRIDER_", env_file=".env", extra="ignore")

    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated.")
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
