-- Who owns the engagement in each role, where its documents live, its size and where it is going.
ALTER TABLE engagements
    ADD COLUMN owners             jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN links              jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN current_users      integer,
    ADD COLUMN anticipated_users  integer,
    ADD COLUMN target_destination text;
