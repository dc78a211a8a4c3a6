-- Findings the analyzer raised: one per (rule, key, window) at most.
CREATE TABLE findings (
    engagement_id uuid        NOT NULL,
    rule          text        NOT NULL,
    log_type      text        NOT NULL,
    key           text        NOT NULL,
    window_start  timestamptz NOT NULL,
    finding_id    uuid        NOT NULL UNIQUE,
    figures       jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (engagement_id, rule, log_type, key, window_start)
);
