-- The newest event applied to each subject (touchpoint, hand-off, review, the stage): an older one read after it (a
-- dead letter replayed) is stale and changes nothing.
CREATE TABLE subject_events (
    engagement_id uuid        NOT NULL,
    subject       text        NOT NULL,   -- as reminders.subject: a touchpoint, hand-off or review id, or 'stage'
    occurred_at   timestamptz NOT NULL,
    event_id      uuid        NOT NULL,
    PRIMARY KEY (engagement_id, subject)
);
