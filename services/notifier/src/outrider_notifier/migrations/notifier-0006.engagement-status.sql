-- An engagement's status (active, paused, closed): only an active engagement's reminders are posted.
ALTER TABLE notifier_engagements ADD COLUMN status text NOT NULL DEFAULT 'active';
