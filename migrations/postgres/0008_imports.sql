-- Imports (issue 3): the uploaded file kept in the database in chunks so any node can run
-- the job, the import's mapping, checkpoint and counts, its error report, and saved mappings.

CREATE TABLE imports (
    id            BIGINT PRIMARY KEY,
    record_type   TEXT NOT NULL CHECK (record_type IN ('account', 'contact')),
    filename      TEXT NOT NULL,
    format        TEXT NOT NULL,
    encoding      TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    headers       JSONB NOT NULL,
    mapping       JSONB NOT NULL,
    status        TEXT NOT NULL,
    job_id        BIGINT,
    next_row      BIGINT NOT NULL DEFAULT 0,
    total_rows    BIGINT NOT NULL DEFAULT 0,
    created       BIGINT NOT NULL DEFAULT 0,
    updated       BIGINT NOT NULL DEFAULT 0,
    skipped       BIGINT NOT NULL DEFAULT 0,
    failed        BIGINT NOT NULL DEFAULT 0,
    branch_id     BIGINT NOT NULL REFERENCES branches (id),
    created_by    BIGINT REFERENCES users (id),
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_imports_created_by ON imports (created_by, id);

CREATE TABLE import_chunks (
    import_id  BIGINT NOT NULL REFERENCES imports (id),
    seq        BIGINT NOT NULL,
    data       BYTEA NOT NULL,
    PRIMARY KEY (import_id, seq)
);

-- phase: 'dry_run' rows are replaced by each dry run; 'run' rows are written with the batch.
CREATE TABLE import_errors (
    import_id  BIGINT NOT NULL REFERENCES imports (id),
    phase      TEXT NOT NULL,
    row_no     BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    col        TEXT NOT NULL,
    message    TEXT NOT NULL,
    original   JSONB NOT NULL,
    PRIMARY KEY (import_id, phase, row_no, seq)
);

CREATE TABLE import_mappings (
    id           BIGINT PRIMARY KEY,
    name         TEXT NOT NULL,
    record_type  TEXT NOT NULL CHECK (record_type IN ('account', 'contact')),
    columns      JSONB NOT NULL,
    created_by   BIGINT REFERENCES users (id),
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX uq_import_mappings_name ON import_mappings (record_type, name);
