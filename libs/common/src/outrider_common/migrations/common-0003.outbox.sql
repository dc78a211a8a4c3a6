-- Transactional outbox shared by the producing services: an event row is written in the same transaction as the
-- change it reports; the producer's relay publishes it to Kafka and stamps published_at.
CREATE TABLE outbox (
    id           bigserial   PRIMARY KEY,
    producer     text        NOT NULL,
    topic        text        NOT NULL,
    key          text        NOT NULL,
    payload      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_pending ON outbox (producer, id) WHERE published_at IS NULL;
