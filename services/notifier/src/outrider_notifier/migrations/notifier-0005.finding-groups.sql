-- When an engagement's last finding message went out: findings after it wait out the group interval.
CREATE INDEX reminders_finding_sent ON reminders (engagement_id, sent_at) WHERE kind = 'finding' AND status = 'sent';
