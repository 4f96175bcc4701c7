-- Delegation: an approver who is away names a delegate for a period. The delegate sees
-- and decides the approver's approval tasks; a decision records both (approver_id and
-- decided_by on approval_tasks).
CREATE TABLE approval_delegations (
    id           INTEGER PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id),
    delegate_id  BIGINT NOT NULL REFERENCES users (id),
    starts_at    TEXT NOT NULL,
    ends_at      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
);
CREATE INDEX ix_approval_delegations_delegate ON approval_delegations (delegate_id, ends_at);
CREATE INDEX ix_approval_delegations_user ON approval_delegations (user_id, id);
