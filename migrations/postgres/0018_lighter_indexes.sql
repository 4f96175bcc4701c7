-- The duplicate scan reads e-mail and phone groups from the records' own indexes
-- (lower(email), phone_e164): dedupe_keys keeps only the name keys, which no column holds
-- (docs/duplicates.md). On PostgreSQL, also: search tokens and duplicate keys collate
-- as "C" (below).
DELETE FROM dedupe_keys WHERE kind IN ('email', 'phone');

-- Search tokens compare byte-wise. Each new document's ~34 tokens are each compared with
-- the GIN index's entries some twenty times, and under the database's locale collation
-- every comparison went through strcoll: a GIN insert of 200,000 contacts' documents took
-- 13% longer than with "C". Tokens need equality and a consistent order, nothing
-- linguistic; queries (`search_tokens(terms) @> ARRAY[...]`) take the column's collation
-- and still read the index. Changing the collation rebuilds the index.
ALTER TABLE search_index ALTER COLUMN terms TYPE TEXT COLLATE "C";
ALTER INDEX ix_search_index_terms ALTER COLUMN 1 SET STATISTICS 2000;

-- The same for the duplicate keys' text columns: their two B-trees compare them on every
-- insert, and none of them is ever sorted for a person to read.
ALTER TABLE dedupe_keys ALTER COLUMN record_type TYPE TEXT COLLATE "C",
    ALTER COLUMN kind TYPE TEXT COLLATE "C", ALTER COLUMN key TYPE TEXT COLLATE "C";
