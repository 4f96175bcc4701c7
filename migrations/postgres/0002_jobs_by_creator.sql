-- The jobs page lists a user's own jobs newest first (kernel::jobs::list).
CREATE INDEX ix_jobs_created_by ON jobs (created_by, id);
