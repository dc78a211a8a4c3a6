-- The trace context of the change an outbox row reports, so the event continues that trace when relayed.
ALTER TABLE outbox ADD COLUMN trace_context jsonb NOT NULL DEFAULT '{}';
