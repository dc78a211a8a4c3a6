-- Optimistic concurrency for the deployment profile: a PUT or PATCH may name the version it read; a stale one gets 409.
ALTER TABLE deployment_profiles ADD COLUMN version integer NOT NULL DEFAULT 1;
