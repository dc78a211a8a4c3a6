-- One digest per channel per day, however many notifier replicas run the daily pass.
CREATE TABLE digests (
    day     date        NOT NULL,
    channel text        NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, channel)
);
