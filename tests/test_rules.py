"""The pure rules: reminder planning, quiet hours, Slack messages, findings thresholds, playbook validation, which
failures of the notifier's subscribers are retried and which dead-lettered."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import pytest
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaConnectionError
from faststream import ContextRepo
from pydantic import ValidationError

import logparse
from outrider_analyzer.findings import Baseline, Thresholds, evaluate
from outrider_common.events import EngagementEvent
from outrider_common.logstats import Aggregate, StatsKey
from outrider_common.topics import ENGAGEMENT_EVENTS
from outrider_notifier import handlers
from outrider_notifier.dispatch import next_digest
from outrider_notifier.handlers import DeadLetters, is_transient
from outrider_notifier.messaging import build, build_digest, build_findings, engagement_link, mention
from outrider_notifier.reminders import STAGE, in_quiet_hours, plan_for_event, subjects_cancelled_by, too_late
from outrider_notifier.slack import RetryLater
from outrider_tracker.playbook.models import Playbook
from outrider_tracker.playbook.service import get_all, missing_exit_criteria
from outrider_tracker.stage.health import HealthInputs, health

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def event(type: str, **data: object) -> EngagementEvent:
    return EngagementEvent(event_id=uuid4(), type=type, engagement_id=uuid4(), occurred_at=NOW, data=data)


def test_a_scheduled_touchpoint_plans_a_lead_and_an_overdue_reminder() -> None:
    at = NOW + timedelta(days=3)
    tp = event("touchpoint.scheduled", touchpoint_id="t1", title="Call", scheduled_at=at.isoformat())
    due, overdue = plan_for_event(tp, lead=timedelta(hours=24), grace=timedelta(hours=1))
    assert (due.kind, due.due_at) == ("touchpoint_due", at - timedelta(hours=24))
    assert (overdue.kind, overdue.due_at) == ("touchpoint_overdue", at + timedelta(hours=1))
    assert due.idempotency_key != overdue.idempotency_key
    # The same event delivered twice plans the same keys, so the second store is a no-op.
    assert [p.idempotency_key for p in plan_for_event(tp, lead=timedelta(hours=24), grace=timedelta(hours=1))] == [
        due.idempotency_key, overdue.idempotency_key
    ]  # fmt: skip
    assert subjects_cancelled_by(event("touchpoint.held", touchpoint_id="t1")) == ["t1"]
    # Without an override the playbook's lead time applies (the AI-assistant rollout reminds 48 h ahead).
    ai = event("touchpoint.scheduled", touchpoint_id="t2", title="Call", scheduled_at=at.isoformat(),
               reminder_lead_hours=48)  # fmt: skip
    assert plan_for_event(ai, lead=None, grace=timedelta(hours=1))[0].due_at == at - timedelta(hours=48)


def test_a_stage_change_is_told_at_once_and_replaces_the_stalled_reminder() -> None:
    moved = event("stage.advanced", to="test_cycle", expected_days=21, forced=False, missing=[])
    changed, stalled = plan_for_event(moved, lead=timedelta(0), grace=timedelta(0))
    assert (changed.kind, changed.due_at) == ("stage_changed", NOW)
    assert (stalled.kind, stalled.subject, stalled.due_at) == ("stage_stalled", STAGE, NOW + timedelta(days=21))
    assert subjects_cancelled_by(moved) == [STAGE]


@pytest.mark.parametrize(
    ("hour", "quiet", "expected"),
    [(23, (22, 7), True), (3, (22, 7), True), (7, (22, 7), False), (12, (22, 7), False), (13, (12, 14), True),
     (14, (12, 14), False), (12, None, False)],
)  # fmt: skip
def test_quiet_hours_may_wrap_midnight(hour: int, quiet: tuple[int, int] | None, expected: bool) -> None:
    assert in_quiet_hours(NOW.replace(hour=hour), quiet) is expected


def test_a_message_says_what_who_why_and_where_to_see_the_engagement() -> None:
    template = "https://grafana.example/d/outrider-customer-logs/?var-engagement={engagement_id}"
    overdue = {"title": "Log review", "scheduled_at": "2026-11-22T10:00:00+00:00"}
    text, blocks = build("touchpoint_overdue", overdue, name="10k RA", customer="ACME", engagement_id="e1",
                         link=engagement_link(template, "e1"))  # fmt: skip
    assert text == "ACME (10k RA): Touchpoint overdue: Log review"
    assert "2026-11-22 10:00 UTC" in blocks[1]["elements"][0]["text"]
    assert blocks[2]["elements"][0]["url"] == "https://grafana.example/d/outrider-customer-logs/?var-engagement=e1"
    # No page a browser can open configured (the tracker's API wants a token): no button, the CLI command instead.
    assert engagement_link("", "e1") is None
    _, blocks = build("touchpoint_overdue", overdue, name="10k RA", customer="ACME", engagement_id="e1", link=None)
    hint = {"type": "mrkdwn", "text": "Status: `outrider engagements status e1`", "verbatim": True}
    assert blocks[2] == {"type": "context", "elements": [hint]}


def test_a_touchpoint_recorded_after_its_time_is_not_coming_up_and_gets_time_to_be_marked_held() -> None:
    past = NOW - timedelta(days=2)
    lead, grace = timedelta(hours=24), timedelta(hours=1)
    recorded = event("touchpoint.scheduled", touchpoint_id="t1", title="Call", scheduled_at=past.isoformat())
    (overdue,) = plan_for_event(recorded, lead=lead, grace=grace)
    assert (overdue.kind, overdue.due_at) == ("touchpoint_overdue", NOW + timedelta(hours=1))
    # One still to come is reminded, even when its lead time has passed already.
    soon = NOW + timedelta(hours=2)
    coming = event("touchpoint.scheduled", touchpoint_id="t2", title="Call", scheduled_at=soon.isoformat())
    due, overdue = plan_for_event(coming, lead=lead, grace=grace)
    assert (due.due_at, overdue.due_at) == (soon - timedelta(hours=24), soon + timedelta(hours=1))
    # Posted late (the notifier down, quiet hours, a pause), "coming up" stays true until the touchpoint is overdue.
    payload = {"scheduled_at": soon.isoformat()}
    assert not too_late("touchpoint_due", payload, now=soon + timedelta(minutes=59), grace=grace)
    assert too_late("touchpoint_due", payload, now=soon + grace, grace=grace)
    assert not too_late("touchpoint_overdue", payload, now=soon + timedelta(days=9), grace=grace)


def test_the_next_digest_is_today_at_its_hour_until_that_passes() -> None:
    assert next_digest(datetime(2026, 11, 24, 6, 59, tzinfo=UTC), 7) == datetime(2026, 11, 24, 7, tzinfo=UTC)
    assert next_digest(datetime(2026, 11, 24, 7, 0, tzinfo=UTC), 7) == datetime(2026, 11, 25, 7, tzinfo=UTC)
    assert next_digest(datetime(2026, 12, 31, 23, 0, tzinfo=UTC), 0) == datetime(2027, 1, 1, 0, tzinfo=UTC)


def digest_item(n: int, title: str) -> dict[str, object]:
    return {"kind": "touchpoint_due", "engagement_id": f"e{n}", "name": f"Rollout {n}", "customer": "ACME",
            "owners": {"solutions_architect": "U024BE7LH"},
            "payload": {"title": title, "scheduled_at": "2026-11-24T15:00:00+00:00"}}  # fmt: skip


def test_a_digest_line_says_what_when_and_who_and_a_long_digest_fits_slacks_limits() -> None:
    text, blocks = build_digest([digest_item(1, "Kick-off")], link_template="https://g/{engagement_id}")
    line = ("• *ACME* · Rollout 1: Touchpoint coming up: *Kick-off* Scheduled for 2026-11-24 15:00 UTC."
            " <@U024BE7LH> <https://g/e1|engagement>")  # fmt: skip
    assert blocks[1]["text"]["text"] == line
    assert text == "Outrider daily digest: 1 reminder\n" + line
    # 600 reminders with long titles: sections of at most 3,000 characters, at most 50 blocks, the rest counted.
    items = [digest_item(n, "Architecture readout " + "x" * 400) for n in range(600)]
    _, blocks = build_digest(items, link_template="")
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert len(blocks) <= 50
    assert all(len(section) <= 3000 for section in sections)
    shown = sum(section.count("• ") for section in sections)
    assert 0 < shown < 600
    assert blocks[-1]["elements"][0]["text"] == f"… and {600 - shown} more."


def window(durations_s: list[float], statuses: list[int]) -> Aggregate:
    lines = b"".join(
        b'{"controller":"C","action":"a","status":%d,"duration_s":%f,"time":"2024-05-01T10:00:00Z"}\n' % (s, d)
        for d, s in zip(durations_s, statuses, strict=True)
    )
    (group,) = logparse.parse_chunk(lines, "production_json").groups
    return Aggregate.from_group(group)


def gitaly_window(times_ms: list[float]) -> Aggregate:
    """One minute of successful FindCommit calls that took `times_ms`."""
    lines = b"".join(
        b'{"grpc.method":"FindCommit","grpc.service":"gitaly.CommitService","grpc.code":"OK","grpc.time_ms":%f,'
        b'"time":"2024-05-01T10:00:00Z"}\n' % t
        for t in times_ms
    )
    (group,) = logparse.parse_chunk(lines, "gitaly").groups
    return Aggregate.from_group(group)


def sidekiq_window(latencies_s: list[float], duration_s: float = 0.1) -> Aggregate:
    """One minute of PostReceive jobs done in `duration_s`, each scheduled after its latency."""
    lines = b"".join(
        b'{"class":"PostReceive","jid":"j%d","job_status":"done","duration_s":%f,"scheduling_latency_s":%f,'
        b'"time":"2024-05-01T10:00:00Z"}\n' % (i, duration_s, s)
        for i, s in enumerate(latencies_s)
    )
    (group,) = logparse.parse_chunk(lines, "sidekiq").groups
    return Aggregate.from_group(group)


def test_findings_fire_on_slow_p99_and_error_rate_but_not_on_thin_windows() -> None:
    where = StatsKey(uuid4(), "production_json", "C#a", NOW)
    limits = Thresholds(min_count=20, slow_endpoint_p99_ms=5000, error_rate=0.05)
    healthy = window([0.1] * 30, [200] * 30)
    assert evaluate(where, healthy, limits) == []
    slow_and_failing = window([0.1] * 20 + [9.0] * 10, [200] * 27 + [500] * 3)  # p99 = 9 s; 10 % failed
    assert [t.rule for t in evaluate(where, slow_and_failing, limits)] == ["slow_endpoint", "error_spike"]
    assert evaluate(where, window([9.0] * 19, [500] * 19), limits) == []  # 19 < min_count


def test_an_error_spike_is_a_rise_against_the_keys_own_baseline() -> None:
    where = StatsKey(uuid4(), "production_json", "C#a", NOW)
    limits = Thresholds(min_count=20, error_rate=0.05, error_baseline_minutes=60, error_spike_factor=3)
    tenth, half = window([0.1] * 40, [200] * 36 + [500] * 4), window([0.1] * 40, [200] * 20 + [500] * 20)
    usual = Baseline(count=600, failed=60)  # the hour before failed one in ten

    assert evaluate(where, tenth, limits, usual) == []  # as usual: no spike, though over 5 %
    (spike,) = evaluate(where, half, limits, usual)
    assert spike.rule == "error_spike"
    assert (spike.figures["rate"], spike.figures["baseline_rate"], spike.figures["baseline_count"]) == (0.5, 0.1, 600)
    assert spike.summary == "C#a 50.0% failed > 5.0% (10.0% over the 60 min before)"
    assert [t.rule for t in evaluate(where, window([0.1] * 40, [200] * 27 + [500] * 13), limits, usual)] == [
        "error_spike"
    ]  # 32.5 %: over three times the usual share
    assert evaluate(where, window([0.1] * 40, [200] * 29 + [500] * 11), limits, usual) == []  # 27.5 %: under it
    # No baseline to judge by (none, or thinner than min_count, or switched off): the share over the line is enough.
    for baseline, chosen in [(None, limits), (Baseline(19, 19), limits),
                             (usual, limits.model_copy(update={"error_baseline_minutes": 0}))]:  # fmt: skip
        (tripped,) = evaluate(where, tenth, chosen, baseline)
        assert "baseline_rate" not in tripped.figures
    assert [t.rule for t in evaluate(where, tenth, limits, Baseline(600, 0))] == ["error_spike"]  # it never failed
    assert evaluate(where, window([0.1] * 40, [200] * 39 + [500]), limits, Baseline(600, 0)) == []  # 2.5 % < 5 %


def test_slow_gitaly_fires_on_the_gitaly_limit_and_only_for_gitaly() -> None:
    gitaly = StatsKey(uuid4(), "gitaly", "FindCommit", NOW)
    limits = Thresholds(min_count=20, slow_endpoint_p99_ms=5000, slow_gitaly_p99_ms=1000)
    slow = gitaly_window([100.0] * 20 + [3000.0] * 10)  # p99 = 3 s: over Gitaly's 1 s, under the endpoints' 5 s
    (tripped,) = evaluate(gitaly, slow, limits)
    assert (tripped.rule, tripped.figures["limit_ms"], tripped.figures["count"]) == ("slow_gitaly", 1000, 30)
    assert tripped.figures["p99_ms"] == pytest.approx(3000, rel=0.01)
    assert evaluate(gitaly, gitaly_window([900.0] * 30), limits) == []  # under the limit
    assert evaluate(gitaly, gitaly_window([100.0] * 199 + [5000.0]), limits) == []  # max over it, p99 (100) not
    assert evaluate(gitaly, gitaly_window([3000.0] * 19), limits) == []  # 19 < min_count
    # Gitaly's limit is Gitaly's: 3 s is no slow endpoint, 800 ms no slow call when endpoints are held to 500 ms.
    endpoint = StatsKey(uuid4(), "production_json", "C#a", NOW)
    assert evaluate(endpoint, window([3.0] * 30, [200] * 30), limits) == []
    strict = Thresholds(min_count=20, slow_endpoint_p99_ms=500, slow_gitaly_p99_ms=1000)
    assert evaluate(gitaly, gitaly_window([800.0] * 30), strict) == []
    assert [t.rule for t in evaluate(endpoint, window([0.8] * 30, [200] * 30), strict)] == ["slow_endpoint"]


def test_sidekiq_latency_fires_on_a_mean_scheduling_latency_over_the_limit() -> None:
    where = StatsKey(uuid4(), "sidekiq", "PostReceive", NOW)
    limits = Thresholds(min_count=20, sidekiq_queue_ms=10_000, slow_endpoint_p99_ms=5000, slow_gitaly_p99_ms=1000)
    late = sidekiq_window([1.0] * 10 + [21.0] * 10)  # mean 11 s
    (tripped,) = evaluate(where, late, limits)
    assert (tripped.rule, tripped.figures["limit_ms"]) == ("sidekiq_latency", 10_000)
    assert tripped.figures["queue_mean_ms"] == pytest.approx(11_000)
    assert evaluate(where, sidekiq_window([10.0] * 20), limits) == []  # at the limit: not over it
    assert evaluate(where, sidekiq_window([60.0] * 19), limits) == []  # 19 < min_count
    assert evaluate(where, sidekiq_window([0.1] * 30, duration_s=30.0), limits) == []  # long jobs are no latency


def test_shipped_playbooks_load_and_bad_ones_are_refused() -> None:
    books = get_all()
    assert [s.id for s in books["gitlab-reference-architecture"].stages] == [
        "discovery", "test_cycle", "recommendation", "rollout_monitoring"
    ]  # fmt: skip
    discovery = books["gitlab-reference-architecture"].stages[0]
    assert missing_exit_criteria(discovery, {"request_logs", "logs_received"}) == [
        "Logs analysed", "Follow-up touchpoint on the findings held"
    ]  # fmt: skip
    bad = {"id": "x", "name": "x", "description": "x", "stages": [
        {"id": "s", "name": "s", "expected_days": 1, "touchpoint_cadence_days": 1,
         "checklist": [{"id": "a", "title": "A"}], "exit_criteria": ["b"]}]}  # fmt: skip
    with pytest.raises(ValidationError, match="unknown items"):
        Playbook.model_validate(bad)


def test_health_starts_at_100_and_names_every_deduction() -> None:
    assert health(HealthInputs(0, 0, 0, days_in_stage=3, expected_days=14)) == (100, [])
    score, reasons = health(HealthInputs(3, 1, 1, days_in_stage=30, expected_days=14))
    assert score == 100 - 30 - 10 - 5 - 20  # overdue capped at 30; stalled over twice the expected time
    assert reasons == [
        "3 overdue touchpoints (-30)", "1 open high-impact risk (-10)", "1 finding in the last 7 days (-5)",
        "30 days in a stage expected to take 14 (-20)",
    ]  # fmt: skip
    assert health(HealthInputs(9, 9, 9, days_in_stage=99, expected_days=1))[0] == 0  # caps 30 + 30 + 20 + 20


def test_health_reasons_agree_with_their_counts() -> None:
    _, reasons = health(HealthInputs(1, 2, 2, days_in_stage=0, expected_days=14))
    assert reasons == [
        "1 overdue touchpoint (-15)", "2 open high-impact risks (-20)", "2 findings in the last 7 days (-10)",
    ]  # fmt: skip


def test_a_date_at_the_calendars_edge_plans_the_reminders_that_fit_in_it() -> None:
    lead, grace = timedelta(hours=24), timedelta(hours=1)
    last = event("touchpoint.scheduled", touchpoint_id="t1", title="K", scheduled_at="9999-12-31T23:59:59+00:00")
    (due,) = plan_for_event(last, lead=lead, grace=grace)  # overdue at 10000-01-01T00:59:59 is past the calendar
    assert (due.kind, due.due_at) == ("touchpoint_due", datetime(9999, 12, 30, 23, 59, 59, tzinfo=UTC))
    first = event("touchpoint.scheduled", touchpoint_id="t2", title="K", scheduled_at="0001-01-01T00:00:00+00:00")
    (overdue,) = plan_for_event(first, lead=lead, grace=grace)
    assert (overdue.kind, overdue.due_at) == ("touchpoint_overdue", NOW + grace)  # long past: overdue once recorded
    review = event("tech_review.requested", review_id="r1", gap="SAML", decision_needed_by="0001-01-02")
    assert plan_for_event(review, lead=lead, grace=grace) == []
    late = EngagementEvent(event_id=uuid4(), type="handoff.requested", engagement_id=uuid4(),
                           occurred_at=datetime.max.replace(tzinfo=UTC), data={"handoff_id": "h1"})  # fmt: skip
    assert plan_for_event(late, lead=lead, grace=grace) == []
    stalled = event("engagement.created", stage="discovery", expected_days=3_000_000)  # some 8,000 years
    assert plan_for_event(stalled, lead=lead, grace=grace) == []


class RecordingBroker:
    """Stands in for the KafkaBroker: keeps what is published."""

    def __init__(self) -> None:
        self.published: list[tuple[bytes, str, bytes, dict[str, str]]] = []

    async def publish(self, value: bytes, topic: str, *, key: bytes, headers: dict[str, str]) -> None:
        self.published.append((value, topic, key, headers))


async def test_a_failure_is_retried_when_a_dependency_is_away_and_dead_lettered_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(handlers, "RETRY_PAUSE_S", 0.0)
    broker = RecordingBroker()
    letters = DeadLetters(broker, {"p.engagement.events": (ENGAGEMENT_EVENTS, "p.engagement.events.dead")})  # type: ignore[arg-type]
    record = ConsumerRecord("p.engagement.events", 2, 7, 0, 0, b"e1", b"{}", None, 2, 2, [("traceparent", b"00-ab")])

    async def outcome(exc: Exception) -> bool | None:
        """True: dead-lettered and acknowledged; False: left to NACK_ON_ERROR, to be read again."""
        return await letters(record, context=ContextRepo()).after_processed(type(exc), exc, None)

    away = [ConnectionRefusedError(), TimeoutError(), OSError("reset"), KafkaConnectionError(),
            asyncpg.ConnectionDoesNotExistError("gone"), asyncpg.InterfaceError("pool is closing"),
            asyncpg.CannotConnectNowError("starting up"), asyncpg.TooManyConnectionsError("full"),
            asyncpg.SerializationError("retry"), asyncpg.DeadlockDetectedError("retry"),
            RetryLater("rate_limited", 1)]  # fmt: skip
    assert [e for e in away if await outcome(e) is not False] == []
    assert broker.published == []
    try:
        EngagementEvent.model_validate({})
    except ValidationError as exc:
        invalid = exc
    broken = [invalid, KeyError("touchpoint_id"), ValueError("bad date"), OverflowError("date value out of range"),
              TypeError("naive and aware"), asyncpg.DataError("out of range"),
              asyncpg.UniqueViolationError("dup")]  # fmt: skip
    assert [e for e in broken if await outcome(e) is not True] == []
    assert [p[:3] for p in broker.published] == [(b"{}", "p.engagement.events.dead", b"e1")] * len(broken)
    headers = broker.published[1][3]
    assert headers == {"traceparent": "00-ab", "dead-letter-reason": "KeyError: 'touchpoint_id'",
                       "dead-letter-source": "p.engagement.events/2/7"}  # fmt: skip
    assert all(is_transient(e) for e in away)
    assert not any(is_transient(e) for e in broken)


def test_handoffs_and_tech_reviews_get_reminders_that_acceptance_and_decisions_cancel() -> None:
    asked = event("handoff.requested", handoff_id="h1", **{"from": "implementation", "to": "technical_advisor"})
    (nudge,) = plan_for_event(asked, lead=timedelta(0), grace=timedelta(0))
    assert (nudge.kind, nudge.due_at) == ("handoff_pending", NOW + timedelta(days=2))
    assert subjects_cancelled_by(event("handoff.accepted", handoff_id="h1")) == ["h1"]
    review = event("tech_review.requested", review_id="r1", gap="SAML", decision_needed_by="2026-12-15")
    (due,) = plan_for_event(review, lead=timedelta(0), grace=timedelta(0))
    assert (due.kind, due.due_at) == ("tech_review_due", datetime(2026, 12, 13, tzinfo=UTC))
    assert subjects_cancelled_by(event("tech_review.decided", review_id="r1")) == ["r1"]


def test_the_owner_who_must_act_is_mentioned() -> None:
    owners = {"solutions_architect": "U024BE7LH", "technical_advisor": "Ana Lima", "project_manager": "W0PM4K2QX"}
    assert mention("touchpoint_due", {}, owners) == "<@U024BE7LH>"
    assert mention("stage_stalled", {}, owners) == "<@W0PM4K2QX>"
    assert mention("handoff_pending", {"to": "technical_advisor"}, owners) == "Ana Lima"
    assert mention("handoff_pending", {"to": "implementation"}, owners) == "<@U024BE7LH>"  # nobody in that role
    assert mention("finding", {}, {}) is None
    # Names that merely start like a Slack id are names, and Slack's control characters in them are escaped.
    assert mention("touchpoint_due", {}, {"solutions_architect": "Walter"}) == "Walter"
    assert mention("touchpoint_due", {}, {"solutions_architect": "Ursula <ops>"}) == "Ursula &lt;ops&gt;"


def test_text_from_people_and_logs_cannot_mention_a_channel_or_hide_a_link() -> None:
    sneaky = "<!channel> Q&A <https://evil.example|click here>"
    escaped = "&lt;!channel&gt; Q&amp;A &lt;https://evil.example|click here&gt;"
    text, blocks = build(
        "touchpoint_due", {"title": sneaky, "scheduled_at": "2026-12-01T10:00:00+00:00"},
        name="<!here>", customer="A&B", engagement_id="e1", link=None,
    )  # fmt: skip
    shown = blocks[0]["text"]["text"]
    assert shown == f"*A&amp;B* · &lt;!here&gt;\nTouchpoint coming up: *{escaped}*"
    assert text == f"A&amp;B (&lt;!here&gt;): Touchpoint coming up: {escaped}"
    assert blocks[1]["elements"][0]["text"] == "Scheduled for 2026-12-01 10:00 UTC."
    _, blocks = build_findings(
        [{"summary": "p99 of <!channel> over 5 s", "log_type": "production_json", "window_start": "2024-05-01T10:00"}],
        name="n", customer="c", engagement_id="e1", link="http://t/status",
    )  # fmt: skip
    listed = "• `p99 of &lt;!channel&gt; over 5 s` (production_json, window 2024-05-01 10:00 UTC)"
    assert blocks[1]["text"]["text"] == listed
