-- Per-user notification preferences: for one kind of notice (`approval.requested`, …),
-- whether the user gets it in the app and by e-mail. No row means both (the default).
CREATE TABLE notification_preferences (
    user_id     BIGINT NOT NULL REFERENCES users (id),
    kind        TEXT NOT NULL,
    in_app      BOOLEAN NOT NULL,
    email       BOOLEAN NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, kind)
);
