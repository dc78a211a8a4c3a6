-- What the notifier knows of each engagement (from engagement.created), its reminders and every delivery attempt.
CREATE TABLE notifier_engagements (
    engagement_id uuid PRIMARY KEY,
    name          text NOT NULL,
    customer      text NOT NULL,
    slack_channel text
);

CREATE TABLE reminders (
    id              uuid        PRIMARY KEY,
    idempotency_key text        NOT NULL UNIQUE,   -- one reminder per cause, however often its event is redelivered
    engagement_id   uuid        NOT NULL,
    kind            text        NOT NULL,
    subject         text        NOT NULL,          -- what it is about (touchpoint id, stage, finding id)
    due_at          timestamptz NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'sending', 'sent', 'cancelled', 'failed')),
    attempts        int         NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    claimed_at      timestamptz,
    sent_at         timestamptz,
    payload         jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reminders_due ON reminders (next_attempt_at) WHERE status IN ('pending', 'sending');
CREATE INDEX reminders_subject ON reminders (engagement_id, subject) WHERE status = 'pending';

CREATE TABLE deliveries (
    id          bigserial   PRIMARY KEY,
    reminder_id uuid        NOT NULL REFERENCES reminders ON DELETE CASCADE,
    attempt     int         NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    outcome     text        NOT NULL,   -- sending, sent, resending_after_crash, retry, failed
    channel     text,
    slack_ts    text,
    error       text
);
CREATE INDEX deliveries_reminder ON deliveries (reminder_id, id);
