-- The duplicate scan reads e-mail and phone groups from the records' own indexes
-- (lower(email), phone_e164): dedupe_keys keeps only the name keys, which no column holds
-- (docs/duplicates.md).
DELETE FROM dedupe_keys WHERE kind IN ('email', 'phone');
