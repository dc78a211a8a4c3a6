-- Each counted chunk's lines per log type, and the time of that type's first and last line. A Helm pod's stdout
-- interleaves production_json, api_json, … lines, each counted under its own type, while `log_chunks.log_type`
-- names only the type most of them have; a type's request rate is counted over its own lines' span.
CREATE TABLE log_chunk_types (
    engagement_id uuid        NOT NULL,
    chunk_id      text        NOT NULL,
    log_type      text        NOT NULL,
    lines         bigint      NOT NULL,
    start_time    timestamptz,
    end_time      timestamptz,
    PRIMARY KEY (engagement_id, chunk_id, log_type)
);
CREATE INDEX log_chunk_types_span ON log_chunk_types (engagement_id, log_type, start_time);
INSERT INTO log_chunk_types (engagement_id, chunk_id, log_type, lines, start_time, end_time)
SELECT engagement_id, chunk_id, coalesce(log_type, 'unknown'), lines, start_time, end_time FROM log_chunks;
