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
-- The tokens of a document. A function of its own (PL/pgSQL, so it is not inlined) only
-- to tell the planner what splitting a document costs: with the built-in's tiny cost it
-- walked the primary key backwards filtering every document for a term that was rarer
-- than its statistics said (144 ms for `^王芳` at 1M contacts, 2.6 s for a term with no
-- match); at this cost it reads the GIN index unless the term is really common.
CREATE FUNCTION search_tokens(terms TEXT) RETURNS TEXT[]
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE COST 10000
    AS $$ BEGIN RETURN string_to_array(terms, ' '); END $$;
CREATE INDEX ix_search_index_terms ON search_index USING gin (search_tokens(terms));
-- Finer statistics of which tokens are common (most_common_elems): the estimate the
-- choice between the two plans rests on.
ALTER INDEX ix_search_index_terms ALTER COLUMN 1 SET STATISTICS 2000;
CREATE TABLE search_rebuilds (requested_at TEXT NOT NULL);
INSERT INTO search_rebuilds (requested_at) VALUES (to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
