-- Engagements: one customer's rollout, the root every other tracker table hangs from.
CREATE TABLE engagements (
    id               uuid        PRIMARY KEY,
    name             text        NOT NULL,
    customer         text        NOT NULL,
    playbook_id      text        NOT NULL,
    stage            text        NOT NULL,
    stage_entered_at timestamptz NOT NULL DEFAULT now(),
    slack_channel    text,
    status           text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'closed')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX engagements_stage ON engagements (playbook_id, stage);

-- Manual checklist items ticked per stage (automatic items are derived from the data, never stored).
CREATE TABLE checklist_items (
    engagement_id uuid        NOT NULL REFERENCES engagements ON DELETE CASCADE,
    stage         text        NOT NULL,
    item_id       text        NOT NULL,
    done_at       timestamptz NOT NULL DEFAULT now(),
    done_by       text        NOT NULL,
    note          text,
    PRIMARY KEY (engagement_id, stage, item_id)
);

-- Who changed what, when and why.
CREATE TABLE audit_log (
    id            bigserial   PRIMARY KEY,
    engagement_id uuid        NOT NULL REFERENCES engagements ON DELETE CASCADE,
    at            timestamptz NOT NULL DEFAULT now(),
    actor         text        NOT NULL,
    action        text        NOT NULL,
    reason        text,
    details       jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_engagement ON audit_log (engagement_id, id);
