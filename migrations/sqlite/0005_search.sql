-- Search terms for accounts and contacts (docs/search.md): one row per distinct term of a
-- record, written in the same transaction as the record. CJK and Hangul text gives every
-- character and every two-character substring, Latin words their 2..10-character prefixes,
-- phones every four-digit window. A query looks terms up by equality on the B-tree below.
CREATE TABLE search_terms (
    record_type  TEXT NOT NULL CHECK (record_type IN ('account', 'contact')),
    record_id    INTEGER NOT NULL,
    term         TEXT NOT NULL,
    weight       INTEGER NOT NULL,
    PRIMARY KEY (record_type, record_id, term)
) WITHOUT ROWID;
CREATE INDEX ix_search_terms_term ON search_terms (term, record_type, record_id);
