-- Published rows by age, per producer: the relay deletes those past their retention (OUTRIDER_OUTBOX_RETENTION_HOURS).
CREATE INDEX outbox_published ON outbox (producer, published_at) WHERE published_at IS NOT NULL;
