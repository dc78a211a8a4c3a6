-- Touchpoints (calls with the customer) and the risk log.
CREATE TABLE touchpoints (
    id            uuid        PRIMARY KEY,
    engagement_id uuid        NOT NULL REFERENCES engagements ON DELETE CASCADE,
    title         text        NOT NULL,
    scheduled_at  timestamptz NOT NULL,
    attendees     text[]      NOT NULL DEFAULT '{}',
    status        text        NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'held', 'cancelled')),
    held_at       timestamptz,
    notes         text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX touchpoints_due ON touchpoints (scheduled_at) WHERE status = 'scheduled';
CREATE INDEX touchpoints_engagement ON touchpoints (engagement_id, scheduled_at);

CREATE TABLE risks (
    id            uuid        PRIMARY KEY,
    engagement_id uuid        NOT NULL REFERENCES engagements ON DELETE CASCADE,
    title         text        NOT NULL,
    likelihood    text        NOT NULL CHECK (likelihood IN ('low', 'medium', 'high')),
    impact        text        NOT NULL CHECK (impact IN ('low', 'medium', 'high')),
    mitigation    text,
    owner         text,
    status        text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'mitigated', 'closed')),
    -- A risk promoted from a finding remembers its kind and key: the same slow endpoint never opens ten risks.
    source_kind   text,
    source_key    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (engagement_id, source_kind, source_key)
);
