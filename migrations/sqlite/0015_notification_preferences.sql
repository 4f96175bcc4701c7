-- Per-user notification preferences: for one kind of notice (`approval.requested`, …),
-- whether the user gets it in the app and by e-mail. No row means both (the default).
CREATE TABLE notification_preferences (
    user_id     BIGINT NOT NULL REFERENCES users (id),
    kind        TEXT NOT NULL,
    in_app      INTEGER NOT NULL,
    email       INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (user_id, kind)
);
