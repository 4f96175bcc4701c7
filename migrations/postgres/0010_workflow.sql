-- Workflow: approval processes (versioned), their running instances, steps and approval
-- tasks; expense claims, the first record type approvals guard; in-app notifications and
-- the mail outbox.

CREATE TABLE approval_processes (
    id           BIGINT PRIMARY KEY,
    name         TEXT NOT NULL,
    record_type  TEXT NOT NULL,
    priority     BIGINT NOT NULL,
    active       BOOLEAN NOT NULL,
    -- The version new submissions start on; older versions stay for running instances.
    current      BIGINT NOT NULL,
    created_by   BIGINT REFERENCES users (id),
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    version      BIGINT NOT NULL DEFAULT 1,
    deleted_at   TIMESTAMPTZ
);
CREATE INDEX ix_approval_processes_type ON approval_processes (record_type, priority, id);

CREATE TABLE approval_process_versions (
    process_id   BIGINT NOT NULL REFERENCES approval_processes (id),
    number       BIGINT NOT NULL,
    name         TEXT NOT NULL,
    priority     BIGINT NOT NULL,
    conditions   JSONB NOT NULL,
    steps        JSONB NOT NULL,
    created_by   BIGINT REFERENCES users (id),
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (process_id, number)
);

CREATE TABLE approval_instances (
    id              BIGINT PRIMARY KEY,
    process_id      BIGINT NOT NULL REFERENCES approval_processes (id),
    process_number  BIGINT NOT NULL,
    record_type     TEXT NOT NULL,
    record_id       BIGINT NOT NULL,
    requester_id    BIGINT REFERENCES users (id),
    branch_id       BIGINT NOT NULL REFERENCES branches (id),
    status          TEXT NOT NULL CHECK (status IN ('running', 'approved', 'rejected')),
    step            BIGINT NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ,
    -- Bumped by every decision: the row lock that serialises decisions on one instance.
    version         BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX ix_approval_instances_record ON approval_instances (record_type, record_id, id);
-- At most one running approval per record.
CREATE UNIQUE INDEX uq_approval_instances_running ON approval_instances (record_type, record_id)
    WHERE status = 'running';

CREATE TABLE approval_steps (
    id           BIGINT PRIMARY KEY,
    instance_id  BIGINT NOT NULL REFERENCES approval_instances (id),
    number       BIGINT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('sequential', 'parallel', 'relay')),
    needed       BIGINT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ
);
CREATE UNIQUE INDEX uq_approval_steps_number ON approval_steps (instance_id, number);

CREATE TABLE approval_tasks (
    id            BIGINT PRIMARY KEY,
    instance_id   BIGINT NOT NULL REFERENCES approval_instances (id),
    step_id       BIGINT NOT NULL REFERENCES approval_steps (id),
    approver_id   BIGINT NOT NULL REFERENCES users (id),
    status        TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'passed', 'cancelled')),
    comment       TEXT,
    passed_from   BIGINT REFERENCES approval_tasks (id),
    passed_to     BIGINT REFERENCES users (id),
    decided_by    BIGINT REFERENCES users (id),
    decided_at    TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_approval_tasks_approver ON approval_tasks (approver_id, status, id);
CREATE INDEX ix_approval_tasks_step ON approval_tasks (step_id, status);
CREATE INDEX ix_approval_tasks_instance ON approval_tasks (instance_id, id);

CREATE TABLE expense_claims (
    id               BIGINT PRIMARY KEY,
    amount_minor     BIGINT NOT NULL,
    currency         TEXT NOT NULL,
    category         TEXT NOT NULL,
    description      TEXT NOT NULL,
    approval_status  TEXT NOT NULL CHECK (approval_status IN ('draft', 'pending', 'approved', 'rejected')),
    owner_id         BIGINT NOT NULL REFERENCES users (id),
    branch_id        BIGINT NOT NULL REFERENCES branches (id),
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    version          BIGINT NOT NULL DEFAULT 1,
    deleted_at       TIMESTAMPTZ
);
CREATE INDEX ix_expense_claims_owner ON expense_claims (owner_id, id);
CREATE INDEX ix_expense_claims_branch ON expense_claims (branch_id, id);

CREATE TABLE notifications (
    id           BIGINT PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id),
    kind         TEXT NOT NULL,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    link         TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    read_at      TIMESTAMPTZ
);
CREATE INDEX ix_notifications_user ON notifications (user_id, read_at, id);

CREATE TABLE mail_outbox (
    id          BIGINT PRIMARY KEY,
    to_email    TEXT NOT NULL,
    to_name     TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts    BIGINT NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    sent_at     TIMESTAMPTZ
);
CREATE INDEX ix_mail_outbox_status ON mail_outbox (status, id);
