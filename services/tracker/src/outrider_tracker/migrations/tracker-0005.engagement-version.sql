-- Optimistic concurrency for engagement edits: a PATCH names the version it read; a stale one gets 409.
ALTER TABLE engagements ADD COLUMN version integer NOT NULL DEFAULT 1;
