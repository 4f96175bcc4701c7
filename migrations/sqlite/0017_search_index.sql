-- The search index as one document per record (docs/search.md): the record's terms as
-- space-separated tokens in a contentless FTS5 table whose rowid is the record id. FTS5
-- keeps each term's record ids as compressed lists, written a segment per transaction,
-- where the former `search_terms` wrote a B-tree row per term (~33 per contact), which
-- made imports write-bound. Terms are cut in Rust, so the rows in `search_rebuilds` ask
-- the next start to rebuild the index.
DROP TABLE search_terms;
CREATE VIRTUAL TABLE search_index USING fts5 (
    terms,
    content = '',
    contentless_delete = 1,
    detail = none,
    tokenize = "ascii tokenchars '=^_'"
);
CREATE TABLE search_rebuilds (requested_at TEXT NOT NULL);
INSERT INTO search_rebuilds (requested_at) VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
