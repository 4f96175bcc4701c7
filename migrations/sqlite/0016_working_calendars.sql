-- Working calendars per branch: the weekly working hours of a branch (JSON: seven lists of
-- [start, end] seconds of the day, Monday first; a branch without a row inherits from its
-- nearest parent that has one, else Monday–Friday 09:00–18:00), and make-up working days
-- (kind 'working', e.g. China's 调休 Saturdays) next to the holidays. One entry per day and
-- calendar (a branch, or every branch when branch_id is null).
CREATE TABLE approval_working_hours (
    branch_id   BIGINT PRIMARY KEY REFERENCES branches (id),
    week        TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1
);

ALTER TABLE approval_holidays ADD COLUMN kind TEXT NOT NULL DEFAULT 'holiday';
DELETE FROM approval_holidays
 WHERE id NOT IN (SELECT MIN(id) FROM approval_holidays GROUP BY COALESCE(branch_id, 0), day);
CREATE UNIQUE INDEX uq_approval_holidays_branch_day ON approval_holidays (COALESCE(branch_id, 0), day);
