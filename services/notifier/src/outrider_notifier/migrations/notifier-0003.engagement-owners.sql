-- Owners by role, so a reminder can mention the person who must act.
ALTER TABLE notifier_engagements ADD COLUMN owners jsonb NOT NULL DEFAULT '{}';
