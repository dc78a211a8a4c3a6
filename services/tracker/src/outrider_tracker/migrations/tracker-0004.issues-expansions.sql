-- The issues log and expansion opportunities.
CREATE TABLE issues (
    id            uuid        PRIMARY KEY,
    engagement_id uuid        NOT NULL REFERENCES engagements ON DELETE CASCADE,
    title         text        NOT NULL,
    severity      text        NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    owner         text,
    status        text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    resolution    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz
);

CREATE TABLE expansions (
    id              uuid        PRIMARY KEY,
    engagement_id   uuid        NOT NULL REFERENCES engagements ON DELETE CASCADE,
    title           text        NOT NULL,
    description     text,
    potential_users int,
    status          text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'won', 'lost')),
    created_at      timestamptz NOT NULL DEFAULT now()
);
