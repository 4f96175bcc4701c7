-- Foundation: branches, roles, users, sessions, API tokens, audit log, jobs, idempotency.
-- Instants are RFC 3339 UTC text (written by the application), booleans 0/1, JSON text.

CREATE TABLE branches (
    id          INTEGER PRIMARY KEY,
    parent_id   INTEGER REFERENCES branches (id),
    name        TEXT NOT NULL,
    code        TEXT,
    kind        TEXT NOT NULL,
    path        TEXT NOT NULL,
    region      TEXT NOT NULL,
    time_zone   TEXT NOT NULL,
    owner_id    INTEGER,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1,
    deleted_at  TEXT
);
CREATE INDEX ix_branches_parent ON branches (parent_id);
CREATE INDEX ix_branches_path ON branches (path);
CREATE UNIQUE INDEX uq_branches_code ON branches (code);

CREATE TABLE roles (
    key          TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    data_scope   TEXT NOT NULL CHECK (data_scope IN ('own', 'branch', 'all')),
    permissions  TEXT NOT NULL,
    built_in     INTEGER NOT NULL,
    updated_at   TEXT NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE users (
    id                   INTEGER PRIMARY KEY,
    email                TEXT NOT NULL,
    name                 TEXT NOT NULL,
    password_hash        TEXT NOT NULL,
    locale               TEXT NOT NULL,
    time_zone            TEXT NOT NULL,
    branch_id            INTEGER NOT NULL REFERENCES branches (id),
    role                 TEXT NOT NULL REFERENCES roles (key),
    manager_id           INTEGER REFERENCES users (id),
    active               INTEGER NOT NULL,
    failed_logins        INTEGER NOT NULL DEFAULT 0,
    locked_until         TEXT,
    password_changed_at  TEXT NOT NULL,
    owner_id             INTEGER,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    version              INTEGER NOT NULL DEFAULT 1,
    deleted_at           TEXT
);
CREATE UNIQUE INDEX uq_users_email ON users (email);
CREATE INDEX ix_users_branch ON users (branch_id);
CREATE INDEX ix_users_owner ON users (owner_id);

CREATE TABLE sessions (
    id_hash       TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    csrf_token    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    ip            TEXT,
    user_agent    TEXT
);
CREATE INDEX ix_sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    token_hash    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT
);
CREATE UNIQUE INDEX uq_api_tokens_hash ON api_tokens (token_hash);
CREATE INDEX ix_api_tokens_user ON api_tokens (user_id);

CREATE TABLE login_failures (
    id     INTEGER PRIMARY KEY,
    ip     TEXT NOT NULL,
    email  TEXT NOT NULL,
    at     TEXT NOT NULL
);
CREATE INDEX ix_login_failures_ip ON login_failures (ip, at);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    actor_id     INTEGER,
    channel      TEXT NOT NULL,
    ip           TEXT,
    request_id   TEXT,
    action       TEXT NOT NULL,
    record_type  TEXT NOT NULL,
    record_id    INTEGER,
    changes      TEXT NOT NULL
);
CREATE INDEX ix_audit_record ON audit_log (record_type, record_id, id);
CREATE INDEX ix_audit_actor ON audit_log (actor_id, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL,
    payload       TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    progress      REAL NOT NULL DEFAULT 0,
    message       TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    run_at        TEXT NOT NULL,
    locked_by     TEXT,
    locked_until  TEXT,
    last_error    TEXT,
    result        TEXT,
    created_by    INTEGER,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX ix_jobs_ready ON jobs (status, run_at);

CREATE TABLE idempotency_keys (
    user_id     INTEGER NOT NULL,
    key         TEXT NOT NULL,
    method      TEXT NOT NULL,
    path        TEXT NOT NULL,
    status      INTEGER,
    response    TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (user_id, key)
);
