"""A DSN as managed databases hand it out (`postgres://`) migrates and connects like `postgresql://`."""

import pytest

from outrider_common.db import Database

pytestmark = pytest.mark.postgres


async def test_a_postgres_scheme_dsn_migrates_and_opens_the_pool(database_dsn: str) -> None:
    assert database_dsn.startswith("postgresql://")
    dsn = "postgres://" + database_dsn.removeprefix("postgresql://")
    database = Database(dsn)
    await database.open()  # yoyo would look for psycopg2 (not installed) behind `postgres://`
    try:
        await database.ping()
        assert await database.pool.fetchval("SELECT count(*) FROM _yoyo_migration") > 0
    finally:
        await database.close()
