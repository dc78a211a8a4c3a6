"""Prometheus metrics of the notifier service."""

from prometheus_client import Counter

EVENTS = Counter("outrider_notifier_events_total", "Engagement events consumed, by event type.", ["type"])
