"""Which reminders an event creates or cancels (pure rules, no I/O)."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from outrider_common.events import EngagementEvent, Finding

STAGE = "stage"  # subject of the stalled-stage reminder: one pending per engagement


@dataclass(frozen=True)
class Planned:
    """A reminder to store: due at `due_at`, unique by `idempotency_key`; `keeps_due`: planned again while pending,
    it keeps the due time it was first given."""

    idempotency_key: str
    kind: str
    subject: str
    due_at: datetime
    payload: dict[str, Any]
    keeps_due: bool = False


HANDOFF_NUDGE = timedelta(days=2)  # a hand-off nobody accepted within two days needs a nudge
REVIEW_LEAD = timedelta(days=2)  # remind two days before a tech-review decision is due


DEFAULT_LEAD = timedelta(hours=24)


def _due(
    idempotency_key: str, kind: str, subject: str, at: datetime, by: timedelta, payload: dict[str, Any],
    *, keeps_due: bool = False,
) -> list[Planned]:  # fmt: skip
    """The reminder due `by` after `at`, or none when that falls outside the calendar (years 1-9999): a reminder
    nobody could wait for (or one before the year 1) is left out, the event's other reminders still planned."""
    try:
        due_at = at + by
    except OverflowError:
        return []
    return [Planned(idempotency_key, kind, subject, due_at, payload, keeps_due)]


def plan_for_event(event: EngagementEvent, *, lead: timedelta | None, grace: timedelta) -> list[Planned]:
    """Reminders an engagement event schedules; `lead` overrides the playbook's lead time when given."""
    data = event.data
    if event.type in ("handoff.requested", "handoff.pending"):
        subject = str(data["handoff_id"])
        requested = _when(data.get("requested_at")) or event.occurred_at  # restated on reopening: as it was due
        return _due(f"handoff_pending:{subject}", "handoff_pending", subject, requested, HANDOFF_NUDGE,
                    dict(data))  # fmt: skip
    if event.type in ("tech_review.requested", "tech_review.open"):
        subject = str(data["review_id"])
        needed_by = datetime.fromisoformat(str(data["decision_needed_by"])).replace(tzinfo=event.occurred_at.tzinfo)
        return _due(f"tech_review_due:{subject}", "tech_review_due", subject, needed_by, -REVIEW_LEAD, dict(data))
    if event.type in ("touchpoint.scheduled", "touchpoint.updated"):
        at = datetime.fromisoformat(str(data["scheduled_at"]))
        if lead is None:
            hours = data.get("reminder_lead_hours")
            lead = timedelta(hours=float(str(hours))) if hours is not None else DEFAULT_LEAD
        subject = str(data["touchpoint_id"])
        payload: dict[str, Any] = {"title": data.get("title"), "scheduled_at": at.isoformat()}
        # One planned for a time already past (recorded after the fact) is not "coming up", and is overdue only
        # once the grace has passed since it was recorded (or moved there): time to mark it held first. An edit that
        # leaves its time (attendees, title) keeps the overdue time it had: `keeps_due`.
        coming = at > event.occurred_at
        overdue_from = max(at, event.occurred_at)
        return [
            *(_due(f"touchpoint_due:{subject}:{at.isoformat()}", "touchpoint_due", subject, at, -lead, payload)
              if coming else []),
            *_due(f"touchpoint_overdue:{subject}:{at.isoformat()}", "touchpoint_overdue", subject, overdue_from,
                  grace, payload, keeps_due=True),
        ]  # fmt: skip
    stalled = []
    if event.type in ("engagement.created", "stage.advanced", "stage.current") and data.get("expected_days"):
        stage = str(data.get("to") or data.get("stage"))
        expected = timedelta(days=float(str(data["expected_days"])))
        key = f"stage_stalled:{event.engagement_id}:{stage}:{event.event_id}"
        payload = {"stage": stage, "expected_days": data["expected_days"]}
        entered = _when(data.get("stage_entered_at")) or event.occurred_at  # restated on reopening: as it was due
        stalled = _due(key, "stage_stalled", STAGE, entered, expected, payload)
    if event.type == "stage.advanced":
        changed = Planned(f"stage_changed:{event.event_id}", "stage_changed", f"changed:{data['to']}",
                          event.occurred_at, dict(data))  # fmt: skip
        return [changed, *stalled]
    return stalled


# Events that make their subject's pending reminders untrue (a held touchpoint needs no reminder, a rescheduled one is
# reminded at its new time; a stage that moved on is no longer stalled), and those that restate their subject as the
# tracker announces it again on reopening an engagement: what they plan is re-planned (a cancelled reminder revived).
RESTATING = frozenset({"handoff.pending", "tech_review.open", "stage.current"})
CANCELLING = frozenset({"touchpoint.held", "touchpoint.cancelled", "touchpoint.updated", "handoff.accepted",
                        "tech_review.decided", "stage.advanced", *RESTATING})  # fmt: skip


def subjects_cancelled_by(event: EngagementEvent) -> list[str]:
    """Subjects whose pending reminders an event makes untrue (`CANCELLING`)."""
    subject = subject_of(event) if event.type in CANCELLING else None
    return [subject] if subject is not None else []


# The id an event names its subject by: the events that plan or cancel a touchpoint's, hand-off's or review's reminders.
SUBJECT_IDS = {
    "touchpoint.scheduled": "touchpoint_id", "touchpoint.updated": "touchpoint_id", "touchpoint.held": "touchpoint_id",
    "touchpoint.cancelled": "touchpoint_id", "handoff.requested": "handoff_id", "handoff.accepted": "handoff_id",
    "handoff.pending": "handoff_id", "tech_review.requested": "review_id", "tech_review.decided": "review_id",
    "tech_review.open": "review_id",
}  # fmt: skip


def subject_of(event: EngagementEvent) -> str | None:
    """The subject whose reminders an event plans or cancels (its touchpoint, hand-off or review; the stage for one
    that starts or moves it), None for an event about no subject's reminders.

    An event older than one already applied to its subject is stale (a dead letter replayed after its touchpoint was
    cancelled): it must change nothing.
    """
    if field := SUBJECT_IDS.get(event.type):
        return str(event.data[field])
    if event.type in ("engagement.created", "stage.advanced", "stage.current"):
        return STAGE
    return None


def _when(value: object) -> datetime | None:
    """An event's ISO time field, None when absent."""
    return None if value is None else datetime.fromisoformat(str(value))


def too_late(kind: str, payload: dict[str, Any], *, now: datetime, grace: timedelta) -> bool:
    """A "coming up" reminder not posted before its touchpoint's overdue time (the notifier was down, quiet hours,
    the engagement paused) would be untrue: the overdue reminder says what is left to say."""
    if kind != "touchpoint_due":
        return False
    try:
        return now >= datetime.fromisoformat(str(payload["scheduled_at"])) + grace
    except (KeyError, ValueError, OverflowError):
        return False


def plan_for_finding(finding: Finding, *, now: datetime) -> Planned:
    """A finding is due at once (the dispatcher may hold it for its engagement's next group: `finding_group_s`)."""
    return Planned(
        f"finding:{finding.finding_id}", "finding", str(finding.finding_id), now, finding.model_dump(mode="json")
    )


def in_quiet_hours(now: datetime, quiet: tuple[int, int] | None) -> bool:
    """True when `now` (UTC) falls in the [start, end) window, which may wrap midnight."""
    return quiet_hour(now.hour, quiet)


def quiet_hour(hour: int, quiet: tuple[int, int] | None) -> bool:
    """True when the hour (UTC) `hour` is in the [start, end) window, which may wrap midnight."""
    if quiet is None:
        return False
    start, end = quiet
    return start <= hour < end if start <= end else hour >= start or hour < end
