"""Reminders to Slack through the real slack_sdk against a local Slack Web API: on time, once, never lost."""

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from outrider.devstack import Service, free_port
from outrider.slack_local import LocalSlack
from outrider_common.events import Finding
from tests.stack import as_admin, running_services

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def notifier_settings(slack: LocalSlack, **extra: str) -> dict[str, str]:
    return {
        "OUTRIDER_SLACK_TOKEN": "xoxb-test",
        "OUTRIDER_SLACK_API_URL": slack.api_url,
        "OUTRIDER_DISPATCH_INTERVAL_S": "0.2",
        **extra,
    }


def until(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return result


def engagement(tracker: str, name: str, channel: str | None = "#acme-rollout") -> str:
    body = {"name": name, "customer": "ACME", "slack_channel": channel, "owners": {"solutions_architect": "U024BE7LH"}}
    return str(as_admin.post(f"{tracker}/v1/engagements", json=body).raise_for_status().json()["id"])


def rows(dsn: str, query: str) -> list[dict[str, Any]]:
    async def fetch() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(dsn)
        try:
            return [dict(r) for r in await conn.fetch(query)]
        finally:
            await conn.close()

    return asyncio.run(fetch())


def execute(dsn: str, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Run (sql, args) `statements` in one transaction: the notifier sees all of the state they leave or none."""

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            async with conn.transaction():
                for sql, args in statements:
                    await conn.execute(sql, *args)
        finally:
            await conn.close()

    asyncio.run(run())


def deliveries(dsn: str) -> list[dict[str, Any]]:
    return rows(dsn, "SELECT reminder_id, attempt, outcome, error FROM deliveries ORDER BY id")


def test_touchpoint_reminder_goes_out_once_at_its_time_and_a_held_touchpoint_cancels_the_rest(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, slack: LocalSlack
) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "notifier"),
        settings=notifier_settings(slack, OUTRIDER_TOUCHPOINT_LEAD_S="2",
                                   OUTRIDER_ENGAGEMENT_URL="https://grafana.example/d/logs/?var-engagement={engagement_id}"),
    ) as svc:  # fmt: skip
        tracker = svc["tracker"].url
        eid = engagement(tracker, "ACME 10k")
        at = datetime.now(UTC) + timedelta(seconds=6)  # reminder due 2 s before: 4 s from now
        tp = as_admin.post(f"{tracker}/v1/engagements/{eid}/touchpoints",
                        json={"title": "Log review call", "scheduled_at": at.isoformat()}).json()  # fmt: skip
        time.sleep(2)
        assert slack.messages == []  # not before its time
        (message,) = until(lambda: slack.messages, "the touchpoint reminder")
        sent_at = datetime.now(UTC)
        assert at - timedelta(seconds=2) <= sent_at <= at + timedelta(seconds=2)
        assert message["channel"] == "#acme-rollout"
        assert "Log review call" in message["text"]
        assert "ACME" in message["text"]
        assert "<@U024BE7LH>" in message["text"]  # the solutions architect is the one to act
        button = {
            "type": "button",
            "text": {"type": "plain_text", "text": "Engagement"},
            "url": f"https://grafana.example/d/logs/?var-engagement={eid}",
        }  # a page a browser can open
        assert button in message["blocks"][-1]["elements"]

        held = as_admin.post(f"{tracker}/v1/engagements/{eid}/touchpoints/{tp['id']}/held", json={"notes": "done"})
        assert held.status_code == 200
        notifier_metrics = svc["notifier"].url + "/metrics"
        until(lambda: 'outrider_notifier_reminders_total{outcome="cancelled"} 1.0' in httpx.get(notifier_metrics).text,
              "the overdue reminder to be cancelled")  # fmt: skip
        time.sleep(1)
        assert len(slack.messages) == 1


def test_a_rescheduled_touchpoint_is_reminded_at_its_new_time_and_a_cancelled_one_never(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, slack: LocalSlack
) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "notifier"), settings=notifier_settings(slack, OUTRIDER_TOUCHPOINT_LEAD_S="2"),
    ) as svc:  # fmt: skip
        tracker = svc["tracker"].url
        base = f"{tracker}/v1/engagements/{engagement(tracker, 'Initech')}/touchpoints"
        later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        moved = as_admin.post(base, json={"title": "Rollout review", "scheduled_at": later}).json()
        dropped_at = datetime.now(UTC) + timedelta(seconds=10)  # its reminder would be due in 8 s
        dropped = as_admin.post(base, json={"title": "Dropped call", "scheduled_at": dropped_at.isoformat()}).json()

        soon = datetime.now(UTC) + timedelta(seconds=6)  # the moved one's reminder is now due in 4 s
        change = {"scheduled_at": soon.isoformat(), "title": "Rollout review (moved)"}
        patched = as_admin.patch(f"{base}/{moved['id']}", json=change)
        assert patched.status_code == 200, patched.text
        assert datetime.fromisoformat(patched.json()["scheduled_at"]) == soon
        assert as_admin.patch(f"{base}/{moved['id']}", json={"title": None}).status_code == 422
        cancelled = as_admin.post(f"{base}/{dropped['id']}/cancel", json={"reason": "customer holiday"})
        assert (cancelled.json()["status"], cancelled.json()["notes"]) == ("cancelled", "customer holiday")
        assert as_admin.post(f"{base}/{dropped['id']}/cancel", json={"reason": "again"}).status_code == 409
        assert as_admin.patch(f"{base}/{dropped['id']}", json={"title": "x"}).status_code == 409

        (message,) = until(lambda: slack.messages, "the reminder at the new time")
        assert datetime.now(UTC) >= soon - timedelta(seconds=2)
        assert "Rollout review (moved)" in message["text"]
        # The old time's two reminders and the dropped call's two were withdrawn; its time passes in silence.
        metrics = svc["notifier"].url + "/metrics"
        until(lambda: 'outrider_notifier_reminders_total{outcome="cancelled"} 4.0' in httpx.get(metrics).text,
              "four reminders withdrawn")  # fmt: skip
        time.sleep(max(0.0, (dropped_at - datetime.now(UTC)).total_seconds()) + 1)
        assert [m["text"] for m in slack.messages] == [message["text"]]


def test_a_touchpoint_moved_away_and_back_is_reminded_at_its_first_time_again(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, slack: LocalSlack
) -> None:
    settings = notifier_settings(slack, OUTRIDER_TOUCHPOINT_LEAD_S="86400", OUTRIDER_OVERDUE_GRACE_S="3600")
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "notifier"), settings=settings,
    ) as svc:  # fmt: skip
        tracker = svc["tracker"].url
        base = f"{tracker}/v1/engagements/{engagement(tracker, 'Globex')}/touchpoints"
        first = datetime.now(UTC) + timedelta(hours=24, minutes=3)  # its reminder is due in 3 min: not during the test
        second = first + timedelta(minutes=3)
        tp = as_admin.post(base, json={"title": "Back and forth", "scheduled_at": first.isoformat()}).json()
        for at in (second, first):
            as_admin.patch(f"{base}/{tp['id']}", json={"scheduled_at": at.isoformat()}).raise_for_status()
        metrics = svc["notifier"].url + "/metrics"
        until(lambda: 'events_total{type="touchpoint.updated"} 2.0' in httpx.get(metrics).text, "both moves")
    stored = rows(database_dsn, "SELECT kind, status, due_at FROM reminders WHERE kind LIKE 'touchpoint%'")
    pending = sorted((r["kind"], r["due_at"]) for r in stored if r["status"] == "pending")
    # Due 24 h before the first time and overdue 1 h after it, as planned when it was created.
    assert pending == [("touchpoint_due", first - timedelta(hours=24)),
                       ("touchpoint_overdue", first + timedelta(hours=1))]  # fmt: skip
    cancelled = sorted((r["kind"], r["due_at"]) for r in stored if r["status"] == "cancelled")
    assert cancelled == [("touchpoint_due", second - timedelta(hours=24)),
                         ("touchpoint_overdue", second + timedelta(hours=1))]  # fmt: skip
    assert slack.messages == []


def test_rate_limits_and_server_errors_end_in_exactly_one_message(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, slack: LocalSlack
) -> None:
    slack.fail_next(3, 429, retry_after=1)
    slack.fail_next(3, 500)
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "notifier"), settings=notifier_settings(slack),
    ) as svc:  # fmt: skip
        tracker = svc["tracker"].url
        eid = engagement(tracker, "storm")
        forced = as_admin.post(f"{tracker}/v1/engagements/{eid}/advance", json={"force": True, "reason": "test"})
        assert forced.status_code == 200
        until(lambda: slack.messages, "the stage-changed message", timeout=60)
        time.sleep(1.5)
        assert len(slack.messages) == 1
        assert slack.requests == 7  # 3 x 429 and 3 x 500 were all answered and retried, then one success
        log = deliveries(database_dsn)
        assert [d["outcome"] for d in log][-1] == "sent"
        assert {d["error"] for d in log if d["outcome"] == "retry"} <= {"rate_limited", "server_error_500"}
        errors = httpx.get(svc["notifier"].url + "/metrics").text
        assert 'outrider_notifier_slack_errors_total{kind="rate_limited"}' in errors


def sent_total(metrics: str) -> int:
    """The reminders one notifier posted, from its /metrics."""
    (line,) = [m for m in metrics.splitlines() if m.startswith('outrider_notifier_reminders_total{outcome="sent"}')]
    return int(float(line.split()[-1]))


def test_two_replicas_never_double_send(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, slack: LocalSlack
) -> None:
    slack.delay_s = 0.05  # deliveries overlap in time across the replicas
    settings = notifier_settings(slack, OUTRIDER_TOUCHPOINT_LEAD_S="8", OUTRIDER_OVERDUE_GRACE_S="0")
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "notifier"), settings=settings,
    ) as svc:  # fmt: skip
        second = Service("notifier", free_port(), svc["notifier"].env, tmp_path / "notifier-2.log")
        second.start()
        second.wait_ready()
        try:
            tracker = svc["tracker"].url
            eid = engagement(tracker, "many")
            soon = (datetime.now(UTC) + timedelta(seconds=8)).isoformat()
            for i in range(12):  # each: a "coming up" reminder due now and an overdue one due in 8 s
                as_admin.post(f"{tracker}/v1/engagements/{eid}/touchpoints",
                           json={"title": f"call {i:02d}", "scheduled_at": soon}).raise_for_status()  # fmt: skip
            until(lambda: len(slack.messages) >= 24, "24 messages")
            time.sleep(1.5)  # a double send would land by now
            # Both claimed: the 12 overdue reminders fall due at once, 5 a claim, and a claim's posts take longer than
            # the other replica's 0.2 s between looks.
            sent = [sent_total(httpx.get(replica.url + "/metrics").text) for replica in (svc["notifier"], second)]
        finally:
            second.stop()
    texts = sorted(m["text"] for m in slack.messages)
    assert len(texts) == 24
    assert len(set(texts)) == 24
    assert sum(sent) == 24
    assert min(sent) > 0, sent


def test_killing_the_notifier_mid_delivery_loses_nothing_and_logs_the_one_resend(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, slack: LocalSlack
) -> None:
    slack.delay_s = 3.0  # Slack takes the message but answers late: the notifier dies before it hears back
    settings = notifier_settings(slack, OUTRIDER_STALE_SENDING_S="2")
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "notifier"), settings=settings,
    ) as svc:  # fmt: skip
        tracker, notifier = svc["tracker"].url, svc["notifier"]
        eid = engagement(tracker, "crash")
        as_admin.post(f"{tracker}/v1/engagements/{eid}/advance", json={"force": True, "reason": "x"}).raise_for_status()
        until(lambda: slack.requests >= 1, "the first delivery attempt")
        assert notifier.pid is not None
        os.killpg(notifier.pid, signal.SIGKILL)
        notifier.stop()
        slack.delay_s = 0.0
        notifier.start()
        notifier.wait_ready()
        until(lambda: len(slack.messages) >= 2, "the resend after the crash")
        time.sleep(1)
    assert len(slack.messages) == 2  # the documented duplicate: posted once before the crash, once after
    assert slack.messages[0]["text"] == slack.messages[1]["text"]
    assert [d["outcome"] for d in deliveries(database_dsn)] == ["sending", "resending_after_crash", "sent"]


def test_a_crash_during_the_one_resend_of_a_post_slack_may_have_taken_does_not_post_it_a_third_time(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, slack: LocalSlack
) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("notifier",), settings=notifier_settings(slack, OUTRIDER_STALE_SENDING_S="1"),
    ):  # fmt: skip
        # As a notifier left it that died while resending a post that had timed out: Slack may show it twice already.
        reminder = uuid4()
        execute(
            database_dsn,
            ("INSERT INTO reminders (id, idempotency_key, engagement_id, kind, subject, due_at, next_attempt_at,"
             " status, attempts, claimed_at, payload) VALUES ($1, 'stage_changed:x', $2, 'stage_changed', 'x',"
             " now(), now(), 'sending', 2, now() - interval '1 minute', '{\"from\": \"a\", \"to\": \"b\"}')",
             (reminder, uuid4())),
            ("INSERT INTO deliveries (reminder_id, attempt, outcome, error) VALUES ($1, 1, 'sending', NULL),"
             " ($1, 1, 'maybe_sent', 'timeout'), ($1, 2, 'sending', NULL)", (reminder,)),
        )  # fmt: skip
        failed = "SELECT status FROM reminders"
        until(lambda: rows(database_dsn, failed) == [{"status": "failed"}], "the reminder to be given up")
        log = (tmp_path / "notifier.log").read_text()
    assert slack.requests == 0
    assert deliveries(database_dsn)[-1] == {"reminder_id": reminder, "attempt": 3, "outcome": "failed",
                                            "error": "maybe_posted_twice"}  # fmt: skip
    assert "maybe posted twice, not sent again after a crash" in log


def test_a_reminder_no_message_can_be_made_of_fails_alone_and_the_others_go_out(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, slack: LocalSlack
) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("notifier",), settings=notifier_settings(slack),
    ):  # fmt: skip
        broken, fine = uuid4(), uuid4()  # the first's payload cannot be told (a bug, another version's shape)
        insert = ("INSERT INTO reminders (id, idempotency_key, engagement_id, kind, subject, due_at, next_attempt_at,"
                  " payload) VALUES ($1, $2, $3, 'stage_changed', 's', now() - $4::interval, now() - $4::interval,"
                  " $5::jsonb)")  # fmt: skip

        execute(
            database_dsn,
            (insert, (broken, "k1", uuid4(), timedelta(seconds=2),
                      json.dumps({"from": "a", "to": "b", "forced": True, "missing": 5}))),
            (insert, (fine, "k2", uuid4(), timedelta(seconds=1), json.dumps({"from": "a", "to": "b"}))),
        )  # fmt: skip
        (message,) = until(lambda: slack.messages, "the reminder behind the broken one")
        time.sleep(1)
    assert "Stage changed: a → b" in message["text"]
    failed = (
        "SELECT r.id, r.status, d.error FROM reminders r JOIN deliveries d ON d.reminder_id = r.id"
        " WHERE d.outcome = 'failed'"
    )
    outcome = rows(database_dsn, failed)
    assert outcome == [{"id": broken, "status": "failed", "error": "unusable: TypeError: 'int' object is not iterable"}]
    assert len(slack.messages) == 1


def test_one_channels_rate_limit_holds_up_only_that_channel(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, slack: LocalSlack
) -> None:
    slack.limit_channel("#busy", seconds=120, retry_after=60)
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "notifier"), settings=notifier_settings(slack),
    ) as svc:  # fmt: skip
        tracker = svc["tracker"].url
        busy, calm = engagement(tracker, "busy", channel="#busy"), engagement(tracker, "calm", channel="#calm")
        for eid in (busy, calm):  # each a stage-changed message, due at once; #busy's comes first
            as_admin.post(f"{tracker}/v1/engagements/{eid}/advance",
                          json={"force": True, "reason": "x"}).raise_for_status()  # fmt: skip
        (message,) = until(lambda: slack.messages, "#calm's message while #busy waits out its minute", timeout=15)
        assert message["channel"] == "#calm"
        # Another message for #busy waits for the minute to pass without asking Slack again.
        as_admin.post(f"{tracker}/v1/engagements/{busy}/advance",
                      json={"force": True, "reason": "y"}).raise_for_status()  # fmt: skip
        query = "SELECT count(*) AS n FROM deliveries WHERE outcome = 'retry' AND error = 'rate_limited'"
        until(lambda: rows(database_dsn, query) == [{"n": 2}], "both #busy messages to wait")
        time.sleep(1)
        assert slack.requests == 2  # one 429 for #busy, one post to #calm
        waiting = rows(database_dsn, "SELECT min(next_attempt_at) AS at FROM reminders WHERE status = 'pending'"
                                     " AND kind = 'stage_changed'")[0]["at"]  # fmt: skip
        assert waiting > datetime.now(UTC) + timedelta(seconds=50)  # Slack's Retry-After, not a guess


def test_a_paused_engagements_reminders_wait_a_closed_ones_end_and_a_rename_shows(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, slack: LocalSlack
) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "notifier"), settings=notifier_settings(slack, OUTRIDER_TOUCHPOINT_LEAD_S="4"),
    ) as svc:  # fmt: skip
        tracker, notifier = svc["tracker"].url, svc["notifier"].url
        eid = engagement(tracker, "Old name")
        base = f"{tracker}/v1/engagements/{eid}"
        at = datetime.now(UTC) + timedelta(seconds=10)  # reminded 4 s before: in 6 s
        tp = as_admin.post(f"{base}/touchpoints", json={"title": "Old title", "scheduled_at": at.isoformat()}).json()
        as_admin.patch(f"{base}/touchpoints/{tp['id']}", json={"title": "Log review"}).raise_for_status()
        as_admin.patch(base, json={"name": "10k rollout", "version": 1}).raise_for_status()
        as_admin.patch(base, json={"status": "paused", "version": 2}).raise_for_status()
        events = 'outrider_notifier_events_total{type="engagement.updated"} 2.0'
        until(lambda: events in httpx.get(f"{notifier}/metrics").text, "the pause to reach the notifier")
        time.sleep(max(0.0, (at - timedelta(seconds=4) - datetime.now(UTC)).total_seconds()) + 2)
        assert slack.messages == []  # due, but the engagement is paused

        as_admin.patch(base, json={"status": "active", "version": 3}).raise_for_status()
        (message,) = until(lambda: slack.messages, "the reminder once the engagement is active again")
        assert message["text"] == "ACME (10k rollout): Touchpoint coming up: Log review (<@U024BE7LH>)"

        as_admin.patch(base, json={"status": "closed", "version": 4}).raise_for_status()
        later = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
        as_admin.post(f"{base}/touchpoints", json={"title": "After the end", "scheduled_at": later}).raise_for_status()
        seen = ('outrider_notifier_events_total{type="engagement.updated"} 4.0',
                'outrider_notifier_events_total{type="touchpoint.scheduled"} 2.0')  # fmt: skip
        until(lambda: all(line in httpx.get(f"{notifier}/metrics").text for line in seen), "the close and the call")
        pending = f"SELECT kind FROM reminders WHERE engagement_id = '{eid}' AND status = 'pending'"
        assert rows(database_dsn, pending) == []  # the overdue reminder ended, the new call planned none
        time.sleep(6)
    assert len(slack.messages) == 1


def test_a_post_slack_may_have_taken_is_sent_again_at_most_once(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, slack: LocalSlack
) -> None:
    slack.delay_s = 2.0  # Slack takes every post but answers after the notifier stopped waiting (1 s)
    settings = notifier_settings(slack, OUTRIDER_SLACK_TIMEOUT_S="1")
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "notifier"), settings=settings,
    ) as svc:  # fmt: skip
        tracker = svc["tracker"].url
        eid = engagement(tracker, "slow")
        as_admin.post(f"{tracker}/v1/engagements/{eid}/advance", json={"force": True, "reason": "x"}).raise_for_status()
        until(lambda: slack.requests >= 2, "the one resend")
        time.sleep(6)  # a third post would come 2-4 s after the second timed out
        assert slack.requests == 2
    assert len(slack.messages) == 2  # the documented duplicate, and no more
    log = deliveries(database_dsn)
    assert [(d["attempt"], d["outcome"], d["error"]) for d in log] == [
        (1, "sending", None), (1, "maybe_sent", "timeout"), (2, "sending", None), (2, "maybe_sent", "timeout")
    ]  # fmt: skip
    (status,) = rows(database_dsn, "SELECT status FROM reminders WHERE kind = 'stage_changed'")
    assert status == {"status": "failed"}  # unconfirmed twice: left for a person to check, not posted a third time


def test_a_daily_digest_gathers_routine_reminders_and_a_touchpoint_before_the_next_one_goes_out_alone(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, slack: LocalSlack
) -> None:
    hour = datetime.now(UTC).hour
    # First quiet hours cover now (and the next hour, should the clock turn one during the test): reminders are
    # stored but nothing is posted (a digest hour inside quiet hours is refused, so it is the hour they end). Then a
    # notifier without them, whose digest hour (this one) has come, posts today's digest at once; the next digest is
    # tomorrow at this hour.
    settings = notifier_settings(slack, OUTRIDER_OVERDUE_GRACE_S="864000",
                                 OUTRIDER_DIGEST_HOUR_UTC=str((hour + 2) % 24),
                                 OUTRIDER_QUIET_HOURS_UTC=f"[{hour}, {(hour + 2) % 24}]")  # fmt: skip
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "notifier"), settings=settings,
    ) as svc:  # fmt: skip
        tracker, notifier = svc["tracker"].url, svc["notifier"]
        eid = engagement(tracker, "digest")
        soon = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()  # reminded 24 h ahead: due now
        for title in ("Kick-off", "Log review", "Architecture readout"):
            as_admin.post(f"{tracker}/v1/engagements/{eid}/touchpoints",
                       json={"title": title, "scheduled_at": soon}).raise_for_status()  # fmt: skip
        scheduled = 'outrider_notifier_reminders_total{outcome="scheduled"} 7.0'  # 3 due, 3 overdue, 1 stalled
        until(lambda: scheduled in httpx.get(f"{notifier.url}/metrics").text, "the reminders to be stored")
        time.sleep(1)
        assert slack.messages == []  # quiet hours: nothing is posted
        notifier.stop()
        awake = {**{k: v for k, v in notifier.env.items() if k != "OUTRIDER_QUIET_HOURS_UTC"},
                 "OUTRIDER_DIGEST_HOUR_UTC": str(hour)}  # fmt: skip
        digest_now = Service("notifier", notifier.port, awake, tmp_path / "notifier-digest.log")
        digest_now.start()
        try:
            digest_now.wait_ready()
            (digest,) = until(lambda: slack.messages, "the digest")
            assert digest["channel"] == "#acme-rollout"
            assert digest["text"].startswith("Outrider daily digest: 3 reminders")
            for title in ("Kick-off", "Log review", "Architecture readout"):  # what, when, who must act
                assert (
                    f"Touchpoint coming up: *{title}* Scheduled for {soon[:16].replace('T', ' ')} UTC."
                    in digest["text"]
                )
            assert digest["text"].count("<@U024BE7LH>") == 3
            # Today's digest went out: a touchpoint planned now, half an hour away, cannot wait for tomorrow's.
            as_admin.post(f"{tracker}/v1/engagements/{eid}/touchpoints",
                       json={"title": "Late", "scheduled_at": soon}).raise_for_status()  # fmt: skip
            _, alone = until(lambda: slack.messages[1:] and slack.messages, "the late touchpoint's own reminder")
            time.sleep(1)
        finally:
            digest_now.stop()
    assert alone["text"] == "ACME (digest): Touchpoint coming up: Late (<@U024BE7LH>)"
    assert len(slack.messages) == 2


def test_a_digest_slack_keeps_failing_is_retried_with_backoff_then_given_up(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, slack: LocalSlack
) -> None:
    slack.fail_next(100, 500)
    now = datetime.now(UTC)
    settings = notifier_settings(slack, OUTRIDER_DIGEST_HOUR_UTC=str(now.hour), OUTRIDER_MAX_ATTEMPTS="2")
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "notifier"), settings=settings,
    ) as svc:  # fmt: skip
        tracker = svc["tracker"].url
        eid = engagement(tracker, "failing")
        # Reminded 24 h ahead, so due now, and after tomorrow's digest hour: a routine reminder for today's digest.
        at = (now + timedelta(hours=24, seconds=-1)).isoformat()
        as_admin.post(f"{tracker}/v1/engagements/{eid}/touchpoints",
                   json={"title": "Kick-off", "scheduled_at": at}).raise_for_status()  # fmt: skip
        query = "SELECT status FROM reminders WHERE kind = 'touchpoint_due'"
        until(lambda: rows(database_dsn, query) == [{"status": "failed"}], "the digest's reminder to fail")
        time.sleep(3)  # a digest retried for ever would be posted again every 1-2 s
        assert slack.requests == 6  # two attempts of three requests each (slack_sdk retries a 500 twice)
    outcomes = [(d["attempt"], d["outcome"], d["error"]) for d in deliveries(database_dsn)]
    assert outcomes == [(1, "sending", None), (1, "retry", "server_error_500"),
                        (2, "sending", None), (2, "failed", "server_error_500")]  # fmt: skip
    assert slack.messages == []


def test_an_incoming_webhook_can_stand_in_for_the_bot_token(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, slack: LocalSlack
) -> None:
    settings = {"OUTRIDER_SLACK_WEBHOOK_URL": slack.webhook_url, "OUTRIDER_DISPATCH_INTERVAL_S": "0.2"}
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "notifier"), settings=settings,
    ) as svc:  # fmt: skip
        tracker = svc["tracker"].url
        eid = engagement(tracker, "hook")
        as_admin.post(f"{tracker}/v1/engagements/{eid}/advance", json={"force": True, "reason": "x"}).raise_for_status()
        (message,) = until(lambda: slack.messages, "the webhook message")
    assert message["channel"] == "(webhook)"
    assert "Stage changed" in message["text"]
    assert [d["outcome"] for d in deliveries(database_dsn)] == ["sending", "sent"]


def finding(engagement_id: str, n: int) -> Finding:
    start = datetime(2026, 11, 20, 10, n, tzinfo=UTC)
    key = f"Projects::IssuesController#action_{n:02d}"
    return Finding(finding_id=uuid4(), engagement_id=UUID(engagement_id), rule="slow_endpoint",
                   log_type="production_json", key=key, window_start=start, window_end=start + timedelta(minutes=1),
                   summary=f"{key}: p99 {2000 + n} ms over the 1000 ms limit",
                   figures={"p99_ms": 2000.0 + n, "limit_ms": 1000.0})  # fmt: skip


def publish(bootstrap: str, topic: str, findings: list[Finding]) -> None:
    """`findings` on the topic as the analyzer's outbox relay writes them."""

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for f in findings:
                await producer.send_and_wait(topic, f.model_dump_json().encode(), key=str(f.engagement_id).encode(),
                                             headers=[("content-type", b"application/json")])  # fmt: skip
        finally:
            await producer.stop()

    asyncio.run(send())


def test_an_engagements_findings_go_out_the_first_at_once_then_together_once_a_window(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, slack: LocalSlack
) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "notifier"), settings=notifier_settings(slack, OUTRIDER_FINDING_GROUP_S="4"),
    ) as svc:  # fmt: skip
        tracker, metrics = svc["tracker"].url, svc["notifier"].url + "/metrics"
        acme, initech = engagement(tracker, "ACME 10k"), engagement(tracker, "Initech", channel="#initech")
        until(lambda: 'events_total{type="engagement.created"} 2.0' in httpx.get(metrics).text, "both engagements")
        topic = f"{topic_prefix}analysis.findings"

        first = finding(acme, 0)
        publish(kafka_bootstrap, topic, [first])
        (alone,) = until(lambda: slack.messages, "the first finding, at once")
        told = time.monotonic()
        assert alone["channel"] == "#acme-rollout"
        assert alone["text"] == f"ACME (ACME 10k): New finding: {first.summary} (<@U024BE7LH>)"

        later, other = [finding(acme, n) for n in range(1, 13)], finding(initech, 30)
        publish(kafka_bootstrap, topic, [*later, other, first])  # `first` again: a redelivery
        until(lambda: 'events_total{type="finding"} 15.0' in httpx.get(metrics).text, "all findings consumed")
        # Initech had no finding message yet: its first goes at once. ACME's twelve wait out its window.
        until(lambda: len(slack.messages) == 2, "Initech's first finding")
        assert slack.messages[1]["channel"] == "#initech"
        group = until(lambda: slack.messages[2] if len(slack.messages) > 2 else None, "ACME's twelve, together")
        assert time.monotonic() - told > 3.0  # held until 4 s after the first message
        assert group["channel"] == "#acme-rollout"
        assert group["text"] == "ACME (ACME 10k): 12 new findings (<@U024BE7LH>)"
        listed = str(group["blocks"])
        shown = {f.finding_id: f"`{f.key}`{f.summary.removeprefix(f.key)}" for f in later}  # the key as code
        assert all(shown[f.finding_id] in listed for f in later[:10])
        assert not any(shown[f.finding_id] in listed for f in later[10:])
        assert f"… and 2 more: `outrider engagements findings {acme}`." in listed  # counted, and where to see them
        time.sleep(1.5)
    assert len(slack.messages) == 3  # the redelivered finding was not told again
    sent = rows(database_dsn, "SELECT r.payload->>'summary' AS summary, d.slack_ts FROM deliveries d"
                              " JOIN reminders r ON r.id = d.reminder_id WHERE d.outcome = 'sent'")  # fmt: skip
    assert sorted(d["summary"] for d in sent) == sorted(f.summary for f in [first, *later, other])
    assert len({d["slack_ts"] for d in sent if d["summary"] in {f.summary for f in later}}) == 1


def test_with_no_group_window_each_finding_is_a_message_of_its_own(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, slack: LocalSlack
) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "notifier"), settings=notifier_settings(slack, OUTRIDER_FINDING_GROUP_S="0"),
    ) as svc:  # fmt: skip
        acme = engagement(svc["tracker"].url, "ACME 10k")
        metrics = svc["notifier"].url + "/metrics"
        until(lambda: 'events_total{type="engagement.created"} 1.0' in httpx.get(metrics).text, "the engagement")
        findings = [finding(acme, n) for n in range(3)]
        publish(kafka_bootstrap, f"{topic_prefix}analysis.findings", findings)
        until(lambda: len(slack.messages) >= 3, "three messages")
        time.sleep(1)
    assert sorted(m["text"] for m in slack.messages) == sorted(
        f"ACME (ACME 10k): New finding: {f.summary} (<@U024BE7LH>)" for f in findings
    )


def send(bootstrap: str, topic: str, key: bytes, values: list[bytes]) -> None:
    """Raw records with one key (one partition, in order), as any producer could write them."""

    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for value in values:
                await producer.send_and_wait(topic, value, key=key, headers=[("content-type", b"application/json")])
        finally:
            await producer.stop()

    asyncio.run(go())


def read_topic(bootstrap: str, topic: str, want: int) -> list[ConsumerRecord]:
    """The first `want` records of `topic` (fewer if they do not come within 30 s)."""

    async def go() -> list[ConsumerRecord]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        got: list[ConsumerRecord] = []
        try:
            deadline = time.monotonic() + 30
            while len(got) < want and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got += records
        finally:
            await consumer.stop()
        return got

    return asyncio.run(go())


def test_a_message_that_fails_every_time_is_dead_lettered_and_its_partition_moves_on(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, slack: LocalSlack
) -> None:
    eid = uuid4()

    def event(type: str, **data: object) -> bytes:
        return json.dumps({"event_id": str(uuid4()), "type": type, "engagement_id": str(eid),
                           "occurred_at": datetime.now(UTC).isoformat(), "data": data}).encode()  # fmt: skip

    not_an_event = b'{"type": "touchpoint.scheduled"}'  # fails the contract
    no_touchpoint = event("touchpoint.scheduled", title="K", scheduled_at="2030-01-01T10:00:00+00:00")  # a bug's
    far = event("touchpoint.scheduled", touchpoint_id="t1", title="K", scheduled_at="9999-12-31T23:59:59+00:00")
    topic, dead_topic = f"{topic_prefix}engagement.events", f"{topic_prefix}engagement.events.dead"
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("notifier",), settings=notifier_settings(slack),
    ) as svc:  # fmt: skip
        notifier = svc["notifier"]
        metrics = notifier.url + "/metrics"
        later = event("engagement.created", name="Later", customer="ACME")
        send(kafka_bootstrap, topic, str(eid).encode(), [not_an_event, no_touchpoint, far, later])
        # The events behind the bad ones on their partition are handled: the far touchpoint gets its reminder (the
        # overdue one would fall past the year 9999 and is left out), the engagement is remembered.
        until(lambda: 'events_total{type="engagement.created"} 1.0' in httpx.get(metrics).text, "the later event")
        text = httpx.get(metrics).text
        assert 'outrider_notifier_reminders_total{outcome="scheduled"} 1.0' in text
        assert 'outrider_notifier_dead_letters_total{error="ValidationError",topic="engagement.events"} 1.0' in text
        assert 'outrider_notifier_dead_letters_total{error="KeyError",topic="engagement.events"} 1.0' in text
        dead = read_topic(kafka_bootstrap, dead_topic, 2)
        assert [r.value for r in dead] == [not_an_event, no_touchpoint]
        assert {r.key for r in dead} == {str(eid).encode()}
        reasons = [dict(r.headers)["dead-letter-reason"].decode() for r in dead]
        assert reasons[0].startswith("ValidationError")
        assert "event_id" in reasons[0]
        assert reasons[1] == "KeyError: 'touchpoint_id'"
        assert all(dict(r.headers)["dead-letter-source"].decode().startswith(f"{topic}/") for r in dead)
        (stored,) = rows(database_dsn, "SELECT kind, due_at FROM reminders")
        assert (stored["kind"], stored["due_at"]) == ("touchpoint_due", datetime(9999, 12, 30, 23, 59, 59, tzinfo=UTC))

        # Their offsets were committed: a restarted notifier reads on from the next event, not the bad ones again.
        notifier.stop()
        notifier.start()
        notifier.wait_ready()
        send(kafka_bootstrap, topic, str(eid).encode(), [event("engagement.created", name="Again", customer="ACME")])
        until(lambda: 'events_total{type="engagement.created"} 1.0' in httpx.get(metrics).text, "the next event")
        assert "outrider_notifier_dead_letters_total{" not in httpx.get(metrics).text  # nothing read twice
