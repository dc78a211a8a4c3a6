"""The portfolio's stalled engagements: longer in their stage than the playbook expects, or nothing changed (nothing in
their audit trail) for OUTRIDER_STALLED_DAYS."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.stack import as_admin, running_services

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def tracker(kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path) -> Iterator[str]:
    """The tracker, calling an engagement stalled after 10 days without a change."""
    with running_services(kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
                          names=("tracker",), settings={"OUTRIDER_STALLED_DAYS": "10"}) as svc:  # fmt: skip
        yield svc["tracker"].url


def _backdate(dsn: str, engagement_id: str, *, in_stage_days: float, changed_days_ago: float) -> None:
    """Date the engagement's stage entry and every change in its audit trail back (a clock moved forward)."""

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("UPDATE engagements SET stage_entered_at = now() - make_interval(secs => $2 * 86400)"
                               " WHERE id = $1", engagement_id, in_stage_days)  # fmt: skip
            await conn.execute("UPDATE audit_log SET at = now() - make_interval(secs => $2 * 86400)"
                               " WHERE engagement_id = $1", engagement_id, changed_days_ago)  # fmt: skip
        finally:
            await conn.close()

    asyncio.run(run())


def test_stalled_is_a_stage_overdue_or_no_change_for_the_configured_days(tracker: str, database_dsn: str) -> None:
    engagements = f"{tracker}/v1/engagements"
    ids = {name: as_admin.post(engagements, json={"name": name, "customer": "c"}).json()["id"]
           for name in ("busy", "quiet", "slow", "both")}  # fmt: skip
    expected = as_admin.get(f"{engagements}/{ids['busy']}/status").json()["stage"]["expected_days"]
    _backdate(database_dsn, ids["busy"], in_stage_days=1, changed_days_ago=1)
    _backdate(database_dsn, ids["quiet"], in_stage_days=1, changed_days_ago=11)  # no change for 11 days > 10
    _backdate(database_dsn, ids["slow"], in_stage_days=expected + 1, changed_days_ago=1)
    _backdate(database_dsn, ids["both"], in_stage_days=expected + 1, changed_days_ago=11)

    stalled = {e["id"]: e for e in as_admin.get(f"{tracker}/v1/portfolio").json()["stalled"]}
    assert ids["busy"] not in stalled
    assert stalled[ids["quiet"]]["why"] == ["no_change"]
    assert stalled[ids["quiet"]]["days_since_change"] == pytest.approx(11, abs=0.01)
    assert stalled[ids["slow"]]["why"] == ["stage_overdue"]
    assert stalled[ids["slow"]]["days_in_stage"] == pytest.approx(expected + 1, abs=0.01)
    assert stalled[ids["both"]]["why"] == ["stage_overdue", "no_change"]

    # A change (a touchpoint booked) is one: the quiet engagement is no longer stalled.
    booked = as_admin.post(f"{engagements}/{ids['quiet']}/touchpoints",
                           json={"title": "Kick-off", "scheduled_at": "2030-01-01T10:00:00Z"})  # fmt: skip
    assert booked.status_code == 201, booked.text
    assert ids["quiet"] not in {e["id"] for e in as_admin.get(f"{tracker}/v1/portfolio").json()["stalled"]}
