-- Customers: categories, their custom field definitions, accounts and contacts.
-- Custom values live in a JSON object (text) per record, validated against the definitions on
-- every write. Phones are stored as E.164 next to what was typed; emails lower-cased.

CREATE TABLE customer_categories (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1,
    deleted_at  TEXT
);
CREATE UNIQUE INDEX uq_customer_categories_name ON customer_categories (name);

CREATE TABLE custom_fields (
    id           INTEGER PRIMARY KEY,
    category_id  INTEGER NOT NULL REFERENCES customer_categories (id),
    record_type  TEXT NOT NULL CHECK (record_type IN ('account', 'contact')),
    key          TEXT NOT NULL,
    label        TEXT NOT NULL,
    type         TEXT NOT NULL,
    required     INTEGER NOT NULL,
    options      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1,
    deleted_at   TEXT
);
CREATE UNIQUE INDEX uq_custom_fields_key ON custom_fields (category_id, record_type, key);

CREATE TABLE accounts (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    category_id  INTEGER REFERENCES customer_categories (id),
    parent_id    INTEGER REFERENCES accounts (id),
    branch_id    INTEGER NOT NULL REFERENCES branches (id),
    owner_id     INTEGER REFERENCES users (id),
    status       TEXT NOT NULL,
    email        TEXT,
    phone_e164   TEXT,
    phone_raw    TEXT,
    website      TEXT,
    external_id  TEXT,
    custom       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1,
    deleted_at   TEXT
);
CREATE INDEX ix_accounts_owner ON accounts (owner_id, id);
CREATE INDEX ix_accounts_branch ON accounts (branch_id, id);
CREATE INDEX ix_accounts_category ON accounts (category_id, id);
CREATE INDEX ix_accounts_parent ON accounts (parent_id);
CREATE INDEX ix_accounts_email ON accounts (lower(email));
CREATE INDEX ix_accounts_phone ON accounts (phone_e164);
CREATE INDEX ix_accounts_external_id ON accounts (external_id);

CREATE TABLE contacts (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    account_id   INTEGER REFERENCES accounts (id),
    branch_id    INTEGER NOT NULL REFERENCES branches (id),
    owner_id     INTEGER REFERENCES users (id),
    email        TEXT,
    phone_e164   TEXT,
    phone_raw    TEXT,
    custom       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1,
    deleted_at   TEXT
);
CREATE INDEX ix_contacts_owner ON contacts (owner_id, id);
CREATE INDEX ix_contacts_branch ON contacts (branch_id, id);
CREATE INDEX ix_contacts_account ON contacts (account_id, id);
CREATE INDEX ix_contacts_email ON contacts (lower(email));
CREATE INDEX ix_contacts_phone ON contacts (phone_e164);
