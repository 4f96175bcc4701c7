-- Richer accounts and contacts (addresses, extra phones and e-mails, credit terms, member
-- fields, a contact's own category), tags, and saved list views. Every new column is
-- NULLable or has a default, so bulk inserts that do not name them keep working.
-- JSON lists (addresses, phones, emails, tags) are stored as JSONB here, text on SQLite.

ALTER TABLE accounts ADD COLUMN region TEXT;
ALTER TABLE accounts ADD COLUMN addresses JSONB NOT NULL DEFAULT '[]';
ALTER TABLE accounts ADD COLUMN phones JSONB NOT NULL DEFAULT '[]';
ALTER TABLE accounts ADD COLUMN emails JSONB NOT NULL DEFAULT '[]';
-- Money in minor units (fen, cents): "50000.00" is 5000000. Never floating point.
ALTER TABLE accounts ADD COLUMN credit_limit_minor BIGINT;
ALTER TABLE accounts ADD COLUMN payment_terms_days INTEGER;
ALTER TABLE accounts ADD COLUMN tags JSONB NOT NULL DEFAULT '[]';

ALTER TABLE contacts ADD COLUMN category_id BIGINT REFERENCES customer_categories (id);
ALTER TABLE contacts ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE contacts ADD COLUMN title TEXT;
ALTER TABLE contacts ADD COLUMN addresses JSONB NOT NULL DEFAULT '[]';
ALTER TABLE contacts ADD COLUMN is_member BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE contacts ADD COLUMN card_no TEXT;
ALTER TABLE contacts ADD COLUMN birthday DATE;
ALTER TABLE contacts ADD COLUMN gender TEXT;
ALTER TABLE contacts ADD COLUMN household_size INTEGER;
ALTER TABLE contacts ADD COLUMN member_since DATE;
ALTER TABLE contacts ADD COLUMN tags JSONB NOT NULL DEFAULT '[]';
-- A membership card belongs to one live contact.
CREATE UNIQUE INDEX uq_contacts_card_no ON contacts (card_no) WHERE card_no IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX ix_contacts_category ON contacts (category_id, id);

-- Sorted lists are keyset-paged: each sort is one index range on (key, id).
CREATE INDEX ix_accounts_name ON accounts (name, id);
CREATE INDEX ix_accounts_created ON accounts (created_at, id);
CREATE INDEX ix_accounts_updated ON accounts (updated_at, id);
CREATE INDEX ix_contacts_name ON contacts (name, id);
CREATE INDEX ix_contacts_created ON contacts (created_at, id);
CREATE INDEX ix_contacts_updated ON contacts (updated_at, id);

-- The tags of accounts and contacts, for filtering (tag = ?) and autocomplete (tag LIKE 'pre%').
-- The record's own `tags` column is what reads show; this table is written with it.
CREATE TABLE record_tags (
    tag          TEXT NOT NULL,
    record_type  TEXT NOT NULL CHECK (record_type IN ('account', 'contact')),
    record_id    BIGINT NOT NULL,
    PRIMARY KEY (tag, record_type, record_id)
);
CREATE INDEX ix_record_tags_record ON record_tags (record_type, record_id);
-- Autocomplete's LIKE 'pre%' as an index range under any database collation.
CREATE INDEX ix_record_tags_prefix ON record_tags (tag text_pattern_ops, record_type);

-- Saved list views: a name and the list's query string, private or shared.
CREATE TABLE saved_views (
    id           BIGINT PRIMARY KEY,
    owner_id     BIGINT REFERENCES users (id),
    name         TEXT NOT NULL,
    record_type  TEXT NOT NULL CHECK (record_type IN ('account', 'contact')),
    query        TEXT NOT NULL,
    shared       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    version      BIGINT NOT NULL DEFAULT 1,
    deleted_at   TIMESTAMPTZ
);
CREATE INDEX ix_saved_views_owner ON saved_views (owner_id, id);
CREATE INDEX ix_saved_views_shared ON saved_views (shared, id);
