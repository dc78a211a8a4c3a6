"""Starting the four Outrider services as real processes against the session's Kafka and PostgreSQL."""

import asyncio
import json
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx

from outrider.devstack import SERVICES, Service, free_port

ADMIN_TOKEN = "otr_test_admin_" + secrets.token_urlsafe(16)
as_admin = httpx.Client(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
"""An HTTP client holding the tracker's bootstrap admin token (every tracker started here accepts it)."""


@contextmanager
def running_services(
    *,
    kafka: str,
    dsn: str,
    topic_prefix: str,
    logs: Path,
    names: tuple[str, ...] = SERVICES,
    settings: dict[str, str] | None = None,
) -> Iterator[dict[str, Service]]:
    """Start `names`, wait until each `/readyz` is 200, and stop them all on exit."""
    env = {
        "OUTRIDER_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "OUTRIDER_DATABASE_URL": dsn,
        "OUTRIDER_TOPIC_PREFIX": topic_prefix,
        "OTEL_SDK_DISABLED": "true",
        "OUTRIDER_ADMIN_TOKEN": ADMIN_TOKEN,
        **(settings or {}),
    }
    services = {n: Service(n, free_port(), env, logs / f"{n}.log") for n in names}
    try:
        for service in services.values():
            service.start()
        for service in services.values():
            service.wait_ready()
        yield services
    finally:
        for service in services.values():
            service.stop()


def open_engagement(tracker: str, name: str = "ACME 10k") -> tuple[str, dict[str, str]]:
    """Create an engagement through the tracker; return its id and the auth header of a fresh upload token."""
    engagement = as_admin.post(f"{tracker}/v1/engagements", json={"name": name, "customer": "ACME"}).raise_for_status()
    engagement_id = engagement.json()["id"]
    token = as_admin.post(f"{tracker}/v1/engagements/{engagement_id}/tokens", json={"name": "test"}).raise_for_status()
    return engagement_id, {"Authorization": f"Bearer {token.json()['token']}"}


def write_findings(dsn: str, engagement_id: str, findings: list[tuple[str, str, datetime, dict[str, float]]]) -> None:
    """(rule, key, window start, figures) of production_json findings, written as the analyzer writes them."""

    async def write() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.executemany(
                "INSERT INTO findings (engagement_id, rule, log_type, key, window_start, finding_id, figures)"
                " VALUES ($1, $2, 'production_json', $3, $4, $5, $6::jsonb)",
                [(uuid.UUID(engagement_id), rule, key, window, uuid.uuid4(), json.dumps(figures))
                 for rule, key, window, figures in findings],
            )  # fmt: skip
        finally:
            await conn.close()

    asyncio.run(write())


def refused(response: httpx.Response, where: list[str], says: str) -> None:
    """A 422 with one error, at `where`, whose message contains `says`."""
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == where, error
    assert says in error["msg"], error


async def event_types(dsn: str, engagement_id: str) -> list[str]:
    """The types of the engagement's events in the outbox, in the order they were recorded."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT payload->>'type' FROM outbox WHERE key = $1 ORDER BY id", engagement_id)
        return [r[0] for r in rows]
    finally:
        await conn.close()
