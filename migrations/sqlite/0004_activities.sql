-- Activities (calls, visits, meetings, e-mails, notes) and tasks, on accounts and contacts.
-- An activity on a contact also carries the contact's account, so an account's timeline is
-- one index range on (account_id, occurred_at, id) plus its contacts' loose entries.

CREATE TABLE activities (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('call', 'visit', 'meeting', 'email', 'note')),
    account_id   INTEGER REFERENCES accounts (id),
    contact_id   INTEGER REFERENCES contacts (id),
    subject      TEXT NOT NULL,
    body         TEXT,
    occurred_at  TEXT NOT NULL,
    branch_id    INTEGER NOT NULL REFERENCES branches (id),
    owner_id     INTEGER REFERENCES users (id),
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1,
    deleted_at   TEXT,
    CHECK (account_id IS NOT NULL OR contact_id IS NOT NULL)
);
CREATE INDEX ix_activities_account ON activities (account_id, occurred_at, id);
CREATE INDEX ix_activities_contact ON activities (contact_id, occurred_at, id);
CREATE INDEX ix_activities_owner ON activities (owner_id, id);
CREATE INDEX ix_activities_branch ON activities (branch_id, id);

CREATE TABLE tasks (
    id           INTEGER PRIMARY KEY,
    subject      TEXT NOT NULL,
    due_at       TEXT NOT NULL,
    remind_at    TEXT,
    assignee_id  INTEGER NOT NULL REFERENCES users (id),
    account_id   INTEGER REFERENCES accounts (id),
    contact_id   INTEGER REFERENCES contacts (id),
    status       TEXT NOT NULL CHECK (status IN ('open', 'done')),
    done_at      TEXT,
    reminded_at  TEXT,
    branch_id    INTEGER NOT NULL REFERENCES branches (id),
    created_by   INTEGER REFERENCES users (id),
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1,
    deleted_at   TEXT
);
CREATE INDEX ix_tasks_assignee ON tasks (assignee_id, status, due_at);
CREATE INDEX ix_tasks_branch ON tasks (branch_id, id);
CREATE INDEX ix_tasks_account ON tasks (account_id);
