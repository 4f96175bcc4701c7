-- The audit log stays append-only with one exception: a data-subject erasure may redact an
-- entry once, replacing the old and new values in `changes` with "***" and stamping
-- `redacted_at`. Who, when, what action on which record stays; nothing else may change.
ALTER TABLE audit_log ADD COLUMN redacted_at TEXT;
DROP TRIGGER audit_log_no_update;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN NOT (
    OLD.redacted_at IS NULL AND NEW.redacted_at IS NOT NULL
    AND NEW.id = OLD.id AND NEW.at = OLD.at AND NEW.actor_id IS OLD.actor_id
    AND NEW.channel = OLD.channel AND NEW.ip IS OLD.ip AND NEW.request_id IS OLD.request_id
    AND NEW.action = OLD.action AND NEW.record_type = OLD.record_type AND NEW.record_id IS OLD.record_id
)
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
