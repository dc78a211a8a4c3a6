-- API tokens for people and systems using the tracker: a role each, stored only as a SHA-256 digest.
CREATE TABLE api_tokens (
    token_hash bytea       PRIMARY KEY,
    name       text        NOT NULL,
    role       text        NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
