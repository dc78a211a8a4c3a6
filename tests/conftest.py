"""Session-wide real Kafka and PostgreSQL: testcontainers when a Docker engine answers, local processes otherwise.

Each test that needs them gets its own database and its own topic prefix, so tests never see each other's data.
"""

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from outrider.devstack import ROOT, Kafka, Postgres
from outrider.slack_local import LocalSlack


def docker_answers() -> bool:
    """True when a Docker engine (not just the CLI) answers `GET /_ping` on its socket."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX)
            address: str | tuple[str, int] = host.removeprefix("unix://")
        else:
            sock = socket.socket()
            netloc = host.split("://", 1)[-1]
            address = (netloc.rsplit(":", 1)[0], int(netloc.rsplit(":", 1)[1]))
        with sock:
            sock.settimeout(3)
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return sock.recv(64).split(b" ")[1:2] == [b"200"]
    except (OSError, ValueError, IndexError):
        return False


@dataclass(frozen=True)
class PostgresServer:
    """Where the session's PostgreSQL listens; `dsn_for(db)` names one database on it."""

    host: str
    port: int
    user: str
    password: str

    def dsn_for(self, database: str) -> str:
        auth = f"{self.user}:{self.password}" if self.password else self.user
        return f"postgresql://{auth}@{self.host}:{self.port}/{database}"


@pytest.fixture(scope="session")
def stack_home() -> Path:
    """A fresh directory for this session's servers (under the git-ignored .cache)."""
    home = ROOT / ".cache" / "test-stack" / uuid.uuid4().hex[:8]
    home.mkdir(parents=True)
    return home


@pytest.fixture(scope="session")
def kafka_bootstrap(stack_home: Path) -> Iterator[str]:
    """Bootstrap servers of a real single-node Kafka broker."""
    if docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    kafka = Kafka(stack_home / "kafka")
    kafka.start()
    try:
        yield kafka.bootstrap_servers
    finally:
        kafka.stop()


@pytest.fixture(scope="session")
def postgres_server(stack_home: Path) -> Iterator[PostgresServer]:
    """A real PostgreSQL server."""
    if docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:15") as container:
            yield PostgresServer(
                container.get_container_host_ip(),
                int(container.get_exposed_port(5432)),
                container.username,
                container.password,
            )
        return
    # Tests need isolation, not durability: fsync off keeps the suite fast.
    pg = Postgres(stack_home / "postgres", durable=False)
    pg.start()
    try:
        yield PostgresServer("127.0.0.1", pg.port, pg.user, "")
    finally:
        pg.stop()


@pytest.fixture
async def database_dsn(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """DSN of a database created for this test alone, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server.dsn_for("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield postgres_server.dsn_for(name)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def topic_prefix() -> str:
    """A topic-name prefix for this test alone."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def tracker(kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path) -> Iterator[str]:
    """The tracker alone, on the real PostgreSQL and Kafka: its base URL."""
    from tests.stack import running_services

    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path, names=("tracker",)
    ) as svc:
        yield svc["tracker"].url


@pytest.fixture
def slack() -> Iterator[LocalSlack]:
    """The local stand-in for Slack's Web API, for a notifier to post to."""
    server = LocalSlack().start()
    yield server
    server.stop()
