"""Settings every service shares; each service subclasses `ServiceSettings` once."""

import logging
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Literal, Self, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

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

    @field_validator("database_url")
    @classmethod
    def _dsn_parses(cls, value: SecretStr) -> SecretStr:
        problem = dsn_problem(value.get_secret_value())
        if problem:
            raise ValueError(problem)
        return value

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


def dsn_problem(dsn: str) -> str | None:
    """Why asyncpg and psycopg would misread `dsn`, without its password; None when it parses."""
    scheme, _, rest = dsn.partition("://")
    if scheme not in ("postgresql", "postgres"):
        return "expected a postgresql:// or postgres:// DSN"
    hint = "percent-encode / # ? @ : [ ] in the user name and password (e.g. / as %2F)"
    try:
        parts = urlsplit(dsn)
    except ValueError:  # an unbalanced [ (its text may be the password's: not repeated)
        return f"cannot parse {masked_dsn(dsn)}: {hint}"
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]  # an @ in the query (?user=admin@server) is asyncpg's to read
    if "@" in rest and "@" not in authority and "@" in re.split(r"[?#]", rest, maxsplit=1)[0]:
        return f"cannot read the user info of {masked_dsn(dsn)}: {hint}"  # a / in the password ended the authority
    if authority.count("@") > 1:
        # a second @ makes part of the password a host
        return f"cannot read the user info of {masked_dsn(dsn)}: {hint}"
    for host in parts.netloc.rpartition("@")[2].split(","):
        port = host.rpartition("]")[2] if host.startswith("[") else host
        if ":" in port and not port.partition(":")[2].isdigit():
            return f"the port of {masked_dsn(dsn)} is not a number: {hint}"
    return None


def masked_dsn(dsn: str) -> str:
    """`dsn` with its password and query (which may hold one) left out."""
    scheme, sep, rest = dsn.partition("://")
    auth, at, hosts = rest.rpartition("@")
    user = re.match(r"[^:@/?#]*", auth)[0]  # type: ignore[index]  # always matches
    return f"{scheme}{sep}{user}{':***' if auth != user else ''}{at}{re.split(r'[?#]', hosts)[0]}"


S = TypeVar("S", bound=BaseSettings)


def read_settings(cls: type[S]) -> S:
    """`cls()` from the environment; on a bad value, one line per error naming its variable, then exit 2."""
    try:
        return cls()
    except ValidationError as e:
        errors = [(".".join(map(str, err["loc"])), err["msg"]) for err in e.errors(include_input=False)]
    except SettingsError as e:  # a complex value (JSON) that does not parse
        named = re.search(r'field "(\w+)"', str(e))
        errors = [(named[1] if named else "", f"not valid JSON ({e.__cause__})")]
    prefix = cls.model_config.get("env_prefix", "")
    names = sorted((n for n in cls.model_fields if "_" in n), key=len, reverse=True)
    for where, msg in errors:
        field, _, inner = where.partition(".")
        for name in names:  # a model check names its fields: say which variables they are
            msg = re.sub(rf"\b{name}\b", f"{prefix}{name.upper()}", msg)
        msg = msg.removeprefix("Value error, ")
        where = f"setting {prefix}{field.upper()}{f' [{inner}]' if inner else ''}" if field else "settings"
        print(f"invalid {where}: {msg}", file=sys.stderr)
    raise SystemExit(2)


def log_start(settings: KafkaSettings, service: str) -> None:
    """Say, before a service's start-up waits on them, which dependencies it waits for and where."""
    logging.getLogger(f"outrider_{service}").info(
        "starting: PostgreSQL first, then Kafka at %s security_protocol=%s",
        settings.kafka_bootstrap_servers,
        settings.kafka_security_protocol,
    )
