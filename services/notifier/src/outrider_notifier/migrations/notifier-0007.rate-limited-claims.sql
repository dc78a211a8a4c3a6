-- Claims that ended waiting out a 429 (Slack's, or the channel's known limit): they are in `attempts` (each claim is
-- one, which keeps (id, attempts) naming a claim) but do not count toward OUTRIDER_MAX_ATTEMPTS.
ALTER TABLE reminders ADD COLUMN rate_limited int NOT NULL DEFAULT 0;
