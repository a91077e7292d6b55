-- Change-notification subscriptions and the durable outbox of notifications to deliver.

CREATE TABLE subscription (
    tenant_id                    TEXT    NOT NULL,
    id                           TEXT    NOT NULL,
    expiration_ticks             INTEGER NOT NULL,
    -- The subscription's scope, as the ingest transaction reads it to plan notifications.
    wants_created                INTEGER NOT NULL,
    wants_updated                INTEGER NOT NULL,
    -- JSON array of participant ids of a filtered resource; NULL for every record.
    participant_ids              TEXT,
    -- When the last reauthorizationRequired lifecycle event was queued (0: never).
    reauthorization_notice_ticks INTEGER NOT NULL DEFAULT 0,
    -- The subscription as served.
    document                     TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX subscription_by_expiry ON subscription (expiration_ticks);

-- One row per notification to deliver. Change notifications are written in the same
-- transaction as the record version that causes them, so a crash between commit and delivery
-- loses nothing; a row is deleted once its delivery is acknowledged or abandoned.
CREATE TABLE outbox (
    -- Global insertion order: notifications of one record go out in the order they were made.
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id            TEXT    NOT NULL,
    subscription_id      TEXT    NOT NULL,
    -- created or updated (change notifications), or missed, subscriptionRemoved,
    -- reauthorizationRequired (lifecycle events).
    event                TEXT    NOT NULL,
    call_record_id       TEXT,
    -- Lifecycle events carry their target and the subscription's state, because the
    -- subscription may be gone by the time they are sent.
    target_url           TEXT,
    client_state         TEXT,
    expiration_ticks     INTEGER,
    created_ticks        INTEGER NOT NULL,
    due_ticks            INTEGER NOT NULL,
    first_attempt_ticks  INTEGER,
    attempts             INTEGER NOT NULL DEFAULT 0,
    lease_owner          TEXT,
    lease_until_ticks    INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX outbox_by_due ON outbox (due_ticks, id);
CREATE INDEX outbox_by_subscription ON outbox (tenant_id, subscription_id);
