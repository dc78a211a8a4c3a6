-- Engagements: one customer's rollout, the root every other tracker table hangs from.
CREATE TABLE engagements (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL,
    customer   text        NOT NULL,
    status     text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'closed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
