"""Prometheus metrics of the notifier service."""

from prometheus_client import Counter, Histogram

EVENTS = Counter("outrider_notifier_events_total", "Events consumed, by event type.", ["type"])
REMINDER_OUTCOMES = ("scheduled", "sent", "cancelled", "failed", "expired")
REMINDERS = Counter(
    "outrider_notifier_reminders_total", f"Reminders by what happened ({', '.join(REMINDER_OUTCOMES)}).", ["outcome"]
)
# At 0 from the start: a child made at its first increment starts at 1, and `increase` never sees that event.
for _outcome in REMINDER_OUTCOMES:
    REMINDERS.labels(_outcome)
STALE_EVENTS = Counter(
    "outrider_notifier_stale_events_total",
    "Engagement events older than one already applied to their subject (a dead letter replayed late), which changed "
    "nothing; by event type.",
    ["type"],
)
DEAD_LETTERS = Counter(
    "outrider_notifier_dead_letters_total",
    "Messages that failed for good, moved to their dead-letter topic; by source topic and error type.",
    ["topic", "error"],
)
SLACK_ERRORS = Counter("outrider_notifier_slack_errors_total", "Slack delivery errors, by kind.", ["kind"])
LATENCY = Histogram(
    "outrider_notifier_delivery_latency_seconds",
    "From a reminder's due time until Slack accepted it.",
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
