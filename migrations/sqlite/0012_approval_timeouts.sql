-- Approval timeouts: when a task's reminder went out and when it was escalated, and the
-- holidays of the working calendars (per branch, or every branch when branch_id is null).
ALTER TABLE approval_tasks ADD COLUMN reminded_at TEXT;
ALTER TABLE approval_tasks ADD COLUMN escalated_at TEXT;

CREATE TABLE approval_holidays (
    id         INTEGER PRIMARY KEY,
    branch_id  BIGINT REFERENCES branches (id),
    day        TEXT NOT NULL,
    name       TEXT NOT NULL
);
CREATE INDEX ix_approval_holidays_day ON approval_holidays (day);
