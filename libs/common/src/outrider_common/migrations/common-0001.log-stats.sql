-- Per-key aggregates per time bucket (written by the analyzer, read by the tracker), and the chunks already
-- counted (the dedup guard). Shared contract, so it lives in the kernel.
CREATE TABLE log_stats (
    engagement_id   uuid             NOT NULL,
    log_type        text             NOT NULL,
    key             text             NOT NULL,
    bucket_start    timestamptz      NOT NULL,
    count           bigint           NOT NULL,
    failed          bigint           NOT NULL,
    duration_sum_ms double precision NOT NULL,
    PRIMARY KEY (engagement_id, log_type, key, bucket_start)
);

CREATE TABLE log_chunks (
    engagement_id uuid        NOT NULL,
    chunk_id      text        NOT NULL,
    log_type      text,
    lines         bigint      NOT NULL,
    bad_lines     bigint      NOT NULL,
    counted_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (engagement_id, chunk_id)
);
