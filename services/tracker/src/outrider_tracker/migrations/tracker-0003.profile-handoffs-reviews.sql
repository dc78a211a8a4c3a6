-- The technical design profile, hand-offs between teams, and tech-review requests.
CREATE TABLE deployment_profiles (
    engagement_id        uuid PRIMARY KEY REFERENCES engagements ON DELETE CASCADE,
    deployment_type      text,
    hosting_provider     text,
    instance_types       text,
    total_cpu            int,
    total_memory_gb      int,
    total_disk_gb        int,
    environments         text[] NOT NULL DEFAULT '{}',
    code_hosts           text[] NOT NULL DEFAULT '{}',
    repositories         int,
    monorepos            int,
    largest_repo_gb      numeric,
    lines_of_code        bigint,
    externalised_services text[] NOT NULL DEFAULT '{}',
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE handoffs (
    id            uuid        PRIMARY KEY,
    engagement_id uuid        NOT NULL REFERENCES engagements ON DELETE CASCADE,
    from_team     text        NOT NULL,
    to_team       text        NOT NULL,
    notes         text,
    status        text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    accepted_at   timestamptz
);

CREATE TABLE tech_reviews (
    id                  uuid        PRIMARY KEY,
    engagement_id       uuid        NOT NULL REFERENCES engagements ON DELETE CASCADE,
    gap                 text        NOT NULL,
    decision_needed_by  date        NOT NULL,
    requirement         text        NOT NULL CHECK (requirement IN ('new', 'existing')),
    customer_expectation text       NOT NULL,
    consequence_if_unmet text       NOT NULL,
    status              text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'decided')),
    decision            text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    decided_at          timestamptz
);
