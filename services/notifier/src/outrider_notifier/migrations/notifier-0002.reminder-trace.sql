-- The trace context of the event that planned a reminder, so its Slack post continues that trace.
ALTER TABLE reminders ADD COLUMN trace_context jsonb NOT NULL DEFAULT '{}';
