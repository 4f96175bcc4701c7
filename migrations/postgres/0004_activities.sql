-- Activities (calls, visits, meetings, e-mails, notes) and tasks, on accounts and contacts.
-- An activity on a contact also carries the contact's account, so an account's timeline is
-- one index range on (account_id, occurred_at, id) plus its contacts' loose entries.

CREATE TABLE activities (
    id           BIGINT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('call', 'visit', 'meeting', 'email', 'note')),
    account_id   BIGINT REFERENCES accounts (id),
    contact_id   BIGINT REFERENCES contacts (id),
    subject      TEXT NOT NULL,
    body         TEXT,
    occurred_at  TIMESTAMPTZ NOT NULL,
    branch_id    BIGINT NOT NULL REFERENCES branches (id),
    owner_id     BIGINT REFERENCES users (id),
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    version      BIGINT NOT NULL DEFAULT 1,
    deleted_at   TIMESTAMPTZ,
    CHECK (account_id IS NOT NULL OR contact_id IS NOT NULL)
);
CREATE INDEX ix_activities_account ON activities (account_id, occurred_at, id);
CREATE INDEX ix_activities_contact ON activities (contact_id, occurred_at, id);
CREATE INDEX ix_activities_owner ON activities (owner_id, id);
CREATE INDEX ix_activities_branch ON activities (branch_id, id);

CREATE TABLE tasks (
    id           BIGINT PRIMARY KEY,
    subject      TEXT NOT NULL,
    due_at       TIMESTAMPTZ NOT NULL,
    remind_at    TIMESTAMPTZ,
    assignee_id  BIGINT NOT NULL REFERENCES users (id),
    account_id   BIGINT REFERENCES accounts (id),
    contact_id   BIGINT REFERENCES contacts (id),
    status       TEXT NOT NULL CHECK (status IN ('open', 'done')),
    done_at      TIMESTAMPTZ,
    reminded_at  TIMESTAMPTZ,
    branch_id    BIGINT NOT NULL REFERENCES branches (id),
    created_by   BIGINT REFERENCES users (id),
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    version      BIGINT NOT NULL DEFAULT 1,
    deleted_at   TIMESTAMPTZ
);
CREATE INDEX ix_tasks_assignee ON tasks (assignee_id, status, due_at);
CREATE INDEX ix_tasks_branch ON tasks (branch_id, id);
CREATE INDEX ix_tasks_account ON tasks (account_id);
