-- The audit log stays append-only with one exception: a data-subject erasure may redact an
-- entry once, replacing the old and new values in `changes` with "***" and stamping
-- `redacted_at`. Who, when, what action on which record stays; nothing else may change.
ALTER TABLE audit_log ADD COLUMN redacted_at TIMESTAMPTZ;
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.redacted_at IS NULL AND NEW.redacted_at IS NOT NULL
        AND NEW.id = OLD.id AND NEW.at = OLD.at AND NEW.actor_id IS NOT DISTINCT FROM OLD.actor_id
        AND NEW.channel = OLD.channel AND NEW.ip IS NOT DISTINCT FROM OLD.ip
        AND NEW.request_id IS NOT DISTINCT FROM OLD.request_id AND NEW.action = OLD.action
        AND NEW.record_type = OLD.record_type AND NEW.record_id IS NOT DISTINCT FROM OLD.record_id
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
