"""The relay deletes its producer's events published longer ago than their retention, in batches and at most once a
minute; events not yet published, published recently or by another producer stay."""

import asyncio
from datetime import timedelta
from uuid import uuid4

import asyncpg
import pytest

from outrider_common import outbox
from outrider_common.db import create_pool, migrate
from outrider_common.settings import KafkaSettings

pytestmark = [pytest.mark.postgres]


async def add(pool: asyncpg.Pool, producer: str, key: str, *, age_days: float, published_ago: float | None) -> None:
    """An outbox row of `producer` created `age_days` ago, published `published_ago` (None: not yet)."""
    published = None if published_ago is None else timedelta(days=published_ago)
    await pool.execute(
        "INSERT INTO outbox (producer, topic, key, payload, created_at, published_at) VALUES ($1, 'engagement.events',"
        " $2, '{}', now() - $3::interval, now() - $4::interval)",
        producer, key, timedelta(days=age_days), published,
    )  # fmt: skip


async def keys(pool: asyncpg.Pool, producer: str) -> list[str]:
    return [r["key"] for r in await pool.fetch("SELECT key FROM outbox WHERE producer = $1 ORDER BY id", producer)]


async def test_published_events_past_their_retention_are_deleted_in_batches_and_the_rest_stay(
    database_dsn: str,
) -> None:
    await asyncio.to_thread(migrate, database_dsn)
    pool = await create_pool(database_dsn)
    mine, other = f"retention-{uuid4()}", f"retention-{uuid4()}"
    try:
        for i in range(5):
            await add(pool, mine, f"old-{i}", age_days=30, published_ago=8)  # past the 7 days
        await add(pool, mine, "recent", age_days=30, published_ago=6)  # created long ago, published recently
        await add(pool, mine, "unpublished", age_days=30, published_ago=None)  # Kafka away for a month
        await add(pool, other, "others", age_days=30, published_ago=8)  # another producer's relay's to delete
        nowhere = KafkaSettings(kafka_bootstrap_servers="127.0.0.1:9")
        relay = outbox.Relay(mine, nowhere, lambda topic: topic.name, retention=timedelta(days=7))

        assert await relay.delete_published(pool, batch=2) == 2  # a batch is bounded
        assert await keys(pool, mine) == ["old-2", "old-3", "old-4", "recent", "unpublished"]
        await relay._prune(pool)  # the rest of what is past its retention, batch after batch
        assert await keys(pool, mine) == ["recent", "unpublished"]
        assert await keys(pool, other) == ["others"]

        await add(pool, mine, "old-again", age_days=30, published_ago=8)
        await relay._prune(pool)  # less than a minute after the last prune: not yet
        assert await keys(pool, mine) == ["recent", "unpublished", "old-again"]
        relay._next_prune = 0.0  # a minute later
        await relay._prune(pool)
        assert await keys(pool, mine) == ["recent", "unpublished"]
    finally:
        await pool.execute("DELETE FROM outbox WHERE producer = any($1::text[])", [mine, other])
        await pool.close()
