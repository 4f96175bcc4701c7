-- Imports (issue 3): the uploaded file kept in the database in chunks so any node can run
-- the job, the import's mapping, checkpoint and counts, its error report, and saved mappings.

CREATE TABLE imports (
    id            INTEGER PRIMARY KEY,
    record_type   TEXT NOT NULL CHECK (record_type IN ('account', 'contact')),
    filename      TEXT NOT NULL,
    format        TEXT NOT NULL,
    encoding      TEXT NOT NULL,
    size_bytes    INTEGER NOT NULL,
    headers       TEXT NOT NULL,
    mapping       TEXT NOT NULL,
    status        TEXT NOT NULL,
    job_id        INTEGER,
    next_row      INTEGER NOT NULL DEFAULT 0,
    total_rows    INTEGER NOT NULL DEFAULT 0,
    created       INTEGER NOT NULL DEFAULT 0,
    updated       INTEGER NOT NULL DEFAULT 0,
    skipped       INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    branch_id     INTEGER NOT NULL REFERENCES branches (id),
    created_by    INTEGER REFERENCES users (id),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX ix_imports_created_by ON imports (created_by, id);

CREATE TABLE import_chunks (
    import_id  INTEGER NOT NULL REFERENCES imports (id),
    seq        INTEGER NOT NULL,
    data       BLOB NOT NULL,
    PRIMARY KEY (import_id, seq)
);

-- phase: 'dry_run' rows are replaced by each dry run; 'run' rows are written with the batch.
CREATE TABLE import_errors (
    import_id  INTEGER NOT NULL REFERENCES imports (id),
    phase      TEXT NOT NULL,
    row_no     INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    col        TEXT NOT NULL,
    message    TEXT NOT NULL,
    original   TEXT NOT NULL,
    PRIMARY KEY (import_id, phase, row_no, seq)
);

CREATE TABLE import_mappings (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    record_type  TEXT NOT NULL CHECK (record_type IN ('account', 'contact')),
    columns      TEXT NOT NULL,
    created_by   INTEGER REFERENCES users (id),
    created_at   TEXT NOT NULL
);
CREATE UNIQUE INDEX uq_import_mappings_name ON import_mappings (record_type, name);
