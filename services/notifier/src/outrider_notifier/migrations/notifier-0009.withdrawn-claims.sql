-- A claim whose reminder was cancelled while it was being sent (its touchpoint cancelled, its engagement closed): not
-- posted if it is not yet, and never posted again when its notifier died; reset by every claim.
ALTER TABLE reminders ADD COLUMN withdrawn boolean NOT NULL DEFAULT false;
