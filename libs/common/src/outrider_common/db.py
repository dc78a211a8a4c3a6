"""PostgreSQL helpers: an asyncpg pool and numbered SQL migrations applied by yoyo under its lock."""

import asyncio
import logging
import re
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import psycopg
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_fixed
from yoyo import get_backend, read_migrations

log = logging.getLogger(__name__)

# PostgreSQL away or busy, not a verdict on the data: the same statement can go through later. Services answer
# 503 (ingest) or read the message again (notifier) on these, never drop the work.
DATABASE_AWAY: tuple[type[Exception], ...] = (
    OSError,  # refused, reset, unreachable, timed out (TimeoutError is one)
    asyncpg.PostgresConnectionError,  # the connection lost in the middle of the query
    asyncpg.InterfaceError,  # the connection or the pool closed under the query
    asyncpg.OperatorInterventionError,  # the server shutting down or starting up, a statement timeout
    asyncpg.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.PostgresSystemError,  # the server's own I/O errors
)


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """An asyncpg pool; fails fast when the database does not answer."""
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, timeout=10)
    assert pool is not None  # create_pool only returns None when used without await
    return pool


COMMON_MIGRATIONS = Path(__file__).parent / "migrations"


def yoyo_dsn(dsn: str, *, connect_timeout_s: float = 10) -> str:
    """`dsn` for yoyo, through psycopg 3: yoyo maps both `postgresql://` and `postgres://` (which asyncpg and many
    managed databases use) to psycopg2, which is not installed. Without a `connect_timeout` psycopg waits 130 s for
    a server that accepts and never answers."""
    dsn = re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", dsn)
    if "connect_timeout=" in dsn:
        return dsn
    return f"{dsn}{'&' if '?' in dsn else '?'}connect_timeout={max(1, round(connect_timeout_s))}"


def where(dsn: str) -> str:
    """`host:port` of `dsn`, for log lines (never its user info)."""
    netloc = urlsplit(dsn).netloc.rpartition("@")[2]
    return netloc or "the local socket"


def migrate(dsn: str, *directories: Path, wait_s: float = 60, connect_timeout_s: float = 10) -> int:
    """Apply the kernel's migrations and those in `directories` not applied yet; returns how many ran.

    Waits up to `wait_s` for PostgreSQL to answer, logging each try. yoyo takes a lock in the database, so
    replicas starting together apply each migration once.
    """
    log.info("waiting for PostgreSQL at %s", where(dsn))

    def warn(state: RetryCallState) -> None:
        log.warning("PostgreSQL at %s not answering attempt=%d error=%s; retrying in 2 s", where(dsn),
                    state.attempt_number, state.outcome.exception() if state.outcome else None)  # fmt: skip

    def given_up(state: RetryCallState) -> None:
        log.error("PostgreSQL at %s did not answer within %g s attempts=%d", where(dsn), wait_s, state.attempt_number)
        raise state.outcome.exception() if state.outcome else TimeoutError(where(dsn))  # type: ignore[misc]

    connect = Retrying(
        # no SQLSTATE: no answer (refused, timed out, unreachable); 57P03: the server is starting up. Others (a wrong
        # password, no such database) will not change by waiting.
        retry=retry_if_exception(lambda e: isinstance(e, psycopg.OperationalError) and e.sqlstate in (None, "57P03")),
        stop=stop_after_delay(max(wait_s - 2, 0)), wait=wait_fixed(2), before_sleep=warn, retry_error_callback=given_up,
    )  # fmt: skip
    backend = connect(get_backend, yoyo_dsn(dsn, connect_timeout_s=connect_timeout_s))
    migrations = read_migrations(str(COMMON_MIGRATIONS), *map(str, directories))
    try:
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
    finally:
        backend.connection.close()
    log.info("PostgreSQL ready at %s migrations_applied=%d", where(dsn), len(pending))
    return len(pending)


class Database:
    """A service's database: the kernel's and its own migrations applied on open, one pool, a readiness ping."""

    def __init__(self, dsn: str, *migrations: Path) -> None:
        self._dsn = dsn
        self._migrations = migrations
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        """The open pool; raises when `open()` has not run."""
        if self._pool is None:
            raise ConnectionError("database pool is not open")
        return self._pool

    async def open(self) -> None:
        """Apply pending migrations (yoyo is synchronous: run off the loop), then open the pool."""
        await asyncio.to_thread(migrate, self._dsn, *self._migrations)
        self._pool = await create_pool(self._dsn)

    async def close(self) -> None:
        """Close the pool, waiting for connections in use to be released."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def ping(self) -> None:
        """Raise unless a query round-trips."""
        await self.pool.fetchval("SELECT 1")
