-- Customers: categories, their custom field definitions, accounts and contacts.
-- Custom values live in a JSONB object per record, validated against the definitions on
-- every write. Phones are stored as E.164 next to what was typed; emails lower-cased.

CREATE TABLE customer_categories (
    id          BIGINT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1,
    deleted_at  TIMESTAMPTZ
);
CREATE UNIQUE INDEX uq_customer_categories_name ON customer_categories (name);

CREATE TABLE custom_fields (
    id           BIGINT PRIMARY KEY,
    category_id  BIGINT NOT NULL REFERENCES customer_categories (id),
    record_type  TEXT NOT NULL CHECK (record_type IN ('account', 'contact')),
    key          TEXT NOT NULL,
    label        TEXT NOT NULL,
    type         TEXT NOT NULL,
    required     BOOLEAN NOT NULL,
    options      JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    version      BIGINT NOT NULL DEFAULT 1,
    deleted_at   TIMESTAMPTZ
);
CREATE UNIQUE INDEX uq_custom_fields_key ON custom_fields (category_id, record_type, key);

CREATE TABLE accounts (
    id           BIGINT PRIMARY KEY,
    name         TEXT NOT NULL,
    category_id  BIGINT REFERENCES customer_categories (id),
    parent_id    BIGINT REFERENCES accounts (id),
    branch_id    BIGINT NOT NULL REFERENCES branches (id),
    owner_id     BIGINT REFERENCES users (id),
    status       TEXT NOT NULL,
    email        TEXT,
    phone_e164   TEXT,
    phone_raw    TEXT,
    website      TEXT,
    external_id  TEXT,
    custom       JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    version      BIGINT NOT NULL DEFAULT 1,
    deleted_at   TIMESTAMPTZ
);
CREATE INDEX ix_accounts_owner ON accounts (owner_id, id);
CREATE INDEX ix_accounts_branch ON accounts (branch_id, id);
CREATE INDEX ix_accounts_category ON accounts (category_id, id);
CREATE INDEX ix_accounts_parent ON accounts (parent_id);
CREATE INDEX ix_accounts_email ON accounts (lower(email));
CREATE INDEX ix_accounts_phone ON accounts (phone_e164);
CREATE INDEX ix_accounts_external_id ON accounts (external_id);

CREATE TABLE contacts (
    id           BIGINT PRIMARY KEY,
    name         TEXT NOT NULL,
    account_id   BIGINT REFERENCES accounts (id),
    branch_id    BIGINT NOT NULL REFERENCES branches (id),
    owner_id     BIGINT REFERENCES users (id),
    email        TEXT,
    phone_e164   TEXT,
    phone_raw    TEXT,
    custom       JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    version      BIGINT NOT NULL DEFAULT 1,
    deleted_at   TIMESTAMPTZ
);
CREATE INDEX ix_contacts_owner ON contacts (owner_id, id);
CREATE INDEX ix_contacts_branch ON contacts (branch_id, id);
CREATE INDEX ix_contacts_account ON contacts (account_id, id);
CREATE INDEX ix_contacts_email ON contacts (lower(email));
CREATE INDEX ix_contacts_phone ON contacts (phone_e164);
