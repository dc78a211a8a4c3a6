-- Engagement-scoped upload tokens: created by the tracker, checked by ingest. Only a SHA-256 of each is kept.
CREATE TABLE engagement_tokens (
    token_hash    bytea       PRIMARY KEY,
    engagement_id uuid        NOT NULL,
    name          text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE INDEX engagement_tokens_engagement ON engagement_tokens (engagement_id);
