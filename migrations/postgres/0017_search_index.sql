-- The search index as one document per record (docs/search.md): the record's terms as
-- space-separated tokens, with a GIN index over them. GIN keeps each term's record ids
-- as compressed posting lists where the former `search_terms` wrote a heap row and two
-- B-tree entries per term (~33 per contact), which made imports write-bound. Terms are
-- cut in Rust, so the rows in `search_rebuilds` ask the next start to rebuild the index.
DROP TABLE search_terms;
CREATE TABLE search_index (
    record_id  BIGINT PRIMARY KEY,
    terms      TEXT NOT NULL
);
CREATE INDEX ix_search_index_terms ON search_index USING gin (string_to_array(terms, ' '));
CREATE TABLE search_rebuilds (requested_at TEXT NOT NULL);
INSERT INTO search_rebuilds (requested_at) VALUES (to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
