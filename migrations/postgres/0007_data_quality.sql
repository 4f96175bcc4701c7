-- Data quality (docs/duplicates.md): duplicate keys, merges with undo, handover registry,
-- consent per channel with history, do-not-contact and erasure markers.

-- A merged-away record is soft-deleted and points at the record it was merged into.
ALTER TABLE accounts ADD COLUMN merged_into BIGINT;
ALTER TABLE contacts ADD COLUMN merged_into BIGINT;
ALTER TABLE contacts ADD COLUMN do_not_contact BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE contacts ADD COLUMN do_not_contact_reason TEXT;
ALTER TABLE contacts ADD COLUMN erased_at TIMESTAMPTZ;

-- Grouping keys for the duplicate scan: normalised e-mail, E.164 phone, normalised name
-- (and its sorted tokens). Rewritten by every write path of a record, removed when it is
-- deleted, merged away or erased. The scan groups by (record_type, kind, key).
CREATE TABLE dedupe_keys (
    record_type  TEXT NOT NULL,
    record_id    BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    key          TEXT NOT NULL,
    PRIMARY KEY (record_type, record_id, kind, key)
);
CREATE INDEX ix_dedupe_keys_key ON dedupe_keys (record_type, kind, key, record_id);

-- Which record types have had their keys built (the backfill runs on first use).
CREATE TABLE dedupe_state (
    record_type  TEXT PRIMARY KEY,
    built_at     TIMESTAMPTZ NOT NULL
);

-- Columns that point at an account or contact: a merge moves them to the kept record.
-- Later areas add their rows (opportunities.account_id, tickets.contact_id, ...) in their
-- own migrations; the merge code reads this table.
CREATE TABLE merge_references (
    record_type  TEXT NOT NULL CHECK (record_type IN ('account', 'contact')),
    table_name   TEXT NOT NULL,
    column_name  TEXT NOT NULL,
    PRIMARY KEY (record_type, table_name, column_name)
);
INSERT INTO merge_references (record_type, table_name, column_name) VALUES
    ('contact', 'activities', 'contact_id'),
    ('contact', 'tasks', 'contact_id'),
    ('contact', 'consents', 'contact_id'),
    ('account', 'contacts', 'account_id'),
    ('account', 'accounts', 'parent_id'),
    ('account', 'activities', 'account_id'),
    ('account', 'tasks', 'account_id');

-- A merge and what it changed, enough to undo it exactly.
CREATE TABLE merges (
    id           BIGINT PRIMARY KEY,
    record_type  TEXT NOT NULL,
    keep_id      BIGINT NOT NULL,
    merged_ids   JSONB NOT NULL,
    snapshot     JSONB NOT NULL,
    actor_id     BIGINT,
    created_at   TIMESTAMPTZ NOT NULL,
    undone_at    TIMESTAMPTZ
);
CREATE INDEX ix_merges_keep ON merges (record_type, keep_id);

-- What a handover moves: rows of `table_name` whose `owner_column` is the departing user
-- (and, when given, matching `open_condition`). Later areas add opportunities, quotes,
-- tickets here in their migrations.
CREATE TABLE handover_kinds (
    kind            TEXT PRIMARY KEY,
    table_name      TEXT NOT NULL,
    owner_column    TEXT NOT NULL,
    branch_column   TEXT NOT NULL,
    open_condition  TEXT,
    position        INTEGER NOT NULL
);
INSERT INTO handover_kinds (kind, table_name, owner_column, branch_column, open_condition, position) VALUES
    ('accounts', 'accounts', 'owner_id', 'branch_id', NULL, 1),
    ('contacts', 'contacts', 'owner_id', 'branch_id', NULL, 2),
    ('open_tasks', 'tasks', 'assignee_id', 'branch_id', 'status = ''open''', 3);

-- Consent per contact and channel: every change is a new row; the newest row per channel
-- is the current state.
CREATE TABLE consents (
    id          BIGINT PRIMARY KEY,
    contact_id  BIGINT NOT NULL REFERENCES contacts (id),
    channel     TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'phone', 'post')),
    granted     BOOLEAN NOT NULL,
    source      TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    actor_id    BIGINT
);
CREATE INDEX ix_consents_contact ON consents (contact_id, channel, id);

-- The manager role merges, hands over and answers data-subject requests.
UPDATE roles SET permissions = permissions || '["customers.merge", "customers.handover", "customers.privacy"]'::jsonb
WHERE key = 'manager' AND built_in;
