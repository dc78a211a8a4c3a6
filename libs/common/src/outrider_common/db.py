"""PostgreSQL helpers: an asyncpg pool and numbered SQL migrations applied by yoyo under its lock."""

from pathlib import Path

import asyncpg
from yoyo import get_backend, read_migrations


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """An asyncpg pool; fails fast when the database does not answer."""
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, timeout=10)
    assert pool is not None  # create_pool only returns None when used without await
    return pool


def migrate(dsn: str, directory: Path) -> int:
    """Apply the migrations in `directory` that are not applied yet; returns how many ran.

    yoyo takes a lock in the database, so replicas starting together apply each migration once.
    """
    backend = get_backend(dsn.replace("postgresql://", "postgresql+psycopg://", 1))
    migrations = read_migrations(str(directory))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    return len(pending)
