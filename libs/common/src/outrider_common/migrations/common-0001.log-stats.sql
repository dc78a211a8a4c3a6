-- Per-key aggregates per time bucket (written by the analyzer, read by the tracker), and the chunks already
-- counted (the dedup guard). A shared contract, so it lives in the kernel. Times are in milliseconds.
CREATE TABLE log_stats (
    engagement_id      uuid             NOT NULL,
    log_type           text             NOT NULL,
    key                text             NOT NULL,
    bucket_start       timestamptz      NOT NULL,
    count              bigint           NOT NULL,
    failed             bigint           NOT NULL,
    duration_sum_ms    double precision NOT NULL,
    duration_sumsq_ms2 double precision NOT NULL,
    duration_min_ms    double precision,
    duration_max_ms    double precision,
    db_sum_ms          double precision NOT NULL,
    gitaly_sum_ms      double precision NOT NULL,
    redis_sum_ms       double precision NOT NULL,
    cpu_sum_ms         double precision NOT NULL,
    queue_sum_ms       double precision NOT NULL,
    sketch             bytea,           -- logparse's mergeable quantile sketch of the durations
    PRIMARY KEY (engagement_id, log_type, key, bucket_start)
);

CREATE TABLE log_chunks (
    engagement_id uuid        NOT NULL,
    chunk_id      text        NOT NULL,
    log_type      text,
    lines         bigint      NOT NULL,
    bad_lines     bigint      NOT NULL,
    start_time    timestamptz,
    end_time      timestamptz,
    counted_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (engagement_id, chunk_id)
);
CREATE INDEX log_chunks_span ON log_chunks (engagement_id, log_type, start_time);
