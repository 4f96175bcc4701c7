-- Foundation: branches, roles, users, sessions, API tokens, audit log, jobs, idempotency.
-- Instants are TIMESTAMPTZ, booleans BOOLEAN, JSON JSONB; ids BIGINT from the application.

CREATE TABLE branches (
    id          BIGINT PRIMARY KEY,
    parent_id   BIGINT REFERENCES branches (id),
    name        TEXT NOT NULL,
    code        TEXT,
    kind        TEXT NOT NULL,
    path        TEXT NOT NULL,
    region      TEXT NOT NULL,
    time_zone   TEXT NOT NULL,
    owner_id    BIGINT,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1,
    deleted_at  TIMESTAMPTZ
);
CREATE INDEX ix_branches_parent ON branches (parent_id);
CREATE INDEX ix_branches_path ON branches (path);
CREATE UNIQUE INDEX uq_branches_code ON branches (code);

CREATE TABLE roles (
    key          TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    data_scope   TEXT NOT NULL CHECK (data_scope IN ('own', 'branch', 'all')),
    permissions  JSONB NOT NULL,
    built_in     BOOLEAN NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    version      BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE users (
    id                   BIGINT PRIMARY KEY,
    email                TEXT NOT NULL,
    name                 TEXT NOT NULL,
    password_hash        TEXT NOT NULL,
    locale               TEXT NOT NULL,
    time_zone            TEXT NOT NULL,
    branch_id            BIGINT NOT NULL REFERENCES branches (id),
    role                 TEXT NOT NULL REFERENCES roles (key),
    manager_id           BIGINT REFERENCES users (id),
    active               BOOLEAN NOT NULL,
    failed_logins        BIGINT NOT NULL DEFAULT 0,
    locked_until         TIMESTAMPTZ,
    password_changed_at  TIMESTAMPTZ NOT NULL,
    owner_id             BIGINT,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    version              BIGINT NOT NULL DEFAULT 1,
    deleted_at           TIMESTAMPTZ
);
CREATE UNIQUE INDEX uq_users_email ON users (email);
CREATE INDEX ix_users_branch ON users (branch_id);
CREATE INDEX ix_users_owner ON users (owner_id);

CREATE TABLE sessions (
    id_hash       TEXT PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id),
    csrf_token    TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    last_seen_at  TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    ip            TEXT,
    user_agent    TEXT
);
CREATE INDEX ix_sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id            BIGINT PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id),
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    token_hash    TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
CREATE UNIQUE INDEX uq_api_tokens_hash ON api_tokens (token_hash);
CREATE INDEX ix_api_tokens_user ON api_tokens (user_id);

CREATE TABLE login_failures (
    id     BIGINT PRIMARY KEY,
    ip     TEXT NOT NULL,
    email  TEXT NOT NULL,
    at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_login_failures_ip ON login_failures (ip, at);

CREATE TABLE audit_log (
    id           BIGINT PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL,
    actor_id     BIGINT,
    channel      TEXT NOT NULL,
    ip           TEXT,
    request_id   TEXT,
    action       TEXT NOT NULL,
    record_type  TEXT NOT NULL,
    record_id    BIGINT,
    changes      JSONB NOT NULL
);
CREATE INDEX ix_audit_record ON audit_log (record_type, record_id, id);
CREATE INDEX ix_audit_actor ON audit_log (actor_id, id);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE jobs (
    id            BIGINT PRIMARY KEY,
    kind          TEXT NOT NULL,
    payload       JSONB NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    progress      DOUBLE PRECISION NOT NULL DEFAULT 0,
    message       TEXT,
    attempts      BIGINT NOT NULL DEFAULT 0,
    max_attempts  BIGINT NOT NULL,
    run_at        TIMESTAMPTZ NOT NULL,
    locked_by     TEXT,
    locked_until  TIMESTAMPTZ,
    last_error    TEXT,
    result        JSONB,
    created_by    BIGINT,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_jobs_ready ON jobs (status, run_at);

CREATE TABLE idempotency_keys (
    user_id     BIGINT NOT NULL,
    key         TEXT NOT NULL,
    method      TEXT NOT NULL,
    path        TEXT NOT NULL,
    status      BIGINT,
    response    TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, key)
);
