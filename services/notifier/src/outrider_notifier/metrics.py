"""Prometheus metrics of the notifier service."""

from prometheus_client import Counter, Histogram

EVENTS = Counter("outrider_notifier_events_total", "Events consumed, by event type.", ["type"])
REMINDERS = Counter(
    "outrider_notifier_reminders_total", "Reminders by what happened (scheduled, sent, cancelled, failed).", ["outcome"]
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
