-- Files attached to a record of any type (receipts of expense claims first; tickets and
-- quotes later). The owning area checks who may see or change them through the record;
-- `content_type` is what the bytes are (sniffed), never what the client claimed.
CREATE TABLE attachments (
    id            BIGINT PRIMARY KEY,
    record_type   TEXT NOT NULL,
    record_id     BIGINT NOT NULL,
    file_name     TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    content       BYTEA NOT NULL,
    uploaded_by   BIGINT REFERENCES users (id),
    created_at    TIMESTAMPTZ NOT NULL,
    deleted_at    TIMESTAMPTZ
);
CREATE INDEX ix_attachments_record ON attachments (record_type, record_id, id);
