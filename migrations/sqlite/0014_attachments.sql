-- Files attached to a record of any type (receipts of expense claims first; tickets and
-- quotes later). The owning area checks who may see or change them through the record;
-- `content_type` is what the bytes are (sniffed), never what the client claimed.
CREATE TABLE attachments (
    id            INTEGER PRIMARY KEY,
    record_type   TEXT NOT NULL,
    record_id     INTEGER NOT NULL,
    file_name     TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size_bytes    INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    content       BLOB NOT NULL,
    uploaded_by   INTEGER REFERENCES users (id),
    created_at    TEXT NOT NULL,
    deleted_at    TEXT
);
CREATE INDEX ix_attachments_record ON attachments (record_type, record_id, id);
