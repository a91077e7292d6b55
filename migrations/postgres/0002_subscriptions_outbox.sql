-- Change-notification subscriptions and the durable outbox of notifications to deliver, for
-- PostgreSQL. Same tables, columns and meanings as migrations/sqlite/0004_subscriptions_outbox.sql.
--
-- Tenancy: tenant_id leads every key, as in 0001. Delivery claims rows of every tenant in global
-- order; under Citus that claim would run per shard, which keeps its order per tenant.
--
-- Not partitioned: both tables are small (a handful of subscriptions per tenant, and outbox rows
-- live only until delivered, usually seconds), so retention is row deletes and plain keys work.
--
-- Concurrency between nodes:
-- - Ingest writes change rows in the same transaction as the record versions that cause them,
--   so a crash between commit and delivery loses nothing and a rolled-back batch leaves none.
-- - Workers claim with `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)`: a row another
--   node is claiming at that instant is skipped instead of waited for (no convoy behind one
--   claimer) and is never handed out twice, because the lease is written before the row lock is
--   released; a row is claimable again only once its lease has lapsed (lease_until_ticks).
-- - Creating a subscription takes a transaction-scoped advisory lock on the tenant before it
--   counts, so two nodes cannot both admit the last subscription a quota allows.

CREATE TABLE subscription (
    tenant_id                    TEXT    NOT NULL,
    id                           TEXT    NOT NULL,
    expiration_ticks             BIGINT  NOT NULL,
    -- The subscription's scope, as the ingest transaction reads it to plan notifications.
    wants_created                BOOLEAN NOT NULL,
    wants_updated                BOOLEAN NOT NULL,
    -- Participant ids of a filtered resource; NULL for every record (an empty array is a
    -- filter that matches nothing, and stays distinct from NULL).
    participant_ids              TEXT[],
    -- When the last reauthorizationRequired lifecycle event was queued (0: never).
    reauthorization_notice_ticks BIGINT  NOT NULL DEFAULT 0,
    -- The subscription as served.
    document                     TEXT    NOT NULL,
    -- Also the ingest's read of a tenant's unexpired scopes and the quota count.
    PRIMARY KEY (tenant_id, id)
);

-- Expiry sweeps and reauthorization reminders look across tenants by expiration.
CREATE INDEX subscription_by_expiry ON subscription (expiration_ticks);

-- One row per notification to deliver; deleted once its delivery is acknowledged or abandoned.
CREATE TABLE outbox (
    -- Global insertion order: notifications of one record go out in the order they were made.
    -- A sequence may leave gaps (rolled-back batches) but never reorders committed rows of one
    -- tenant's record, whose versions are written under the record's advisory lock.
    id                   BIGSERIAL PRIMARY KEY,
    tenant_id            TEXT    NOT NULL,
    subscription_id      TEXT    NOT NULL,
    -- created or updated (change notifications), or missed, subscriptionRemoved,
    -- reauthorizationRequired (lifecycle events).
    event                TEXT    NOT NULL,
    call_record_id       TEXT,
    -- Lifecycle events carry their target and the subscription's state, because the
    -- subscription may be gone by the time they are sent. NULL on change rows, which read the
    -- subscription's current notificationUrl and clientState when claimed.
    target_url           TEXT,
    client_state         TEXT,
    expiration_ticks     BIGINT,
    created_ticks        BIGINT  NOT NULL,
    due_ticks            BIGINT  NOT NULL,
    first_attempt_ticks  BIGINT,
    attempts             BIGINT  NOT NULL DEFAULT 0,
    -- The worker holding the row, until lease_until_ticks (0: never leased, or released).
    lease_owner          TEXT,
    lease_until_ticks    BIGINT  NOT NULL DEFAULT 0
);

-- The claim's scan: due rows, oldest first.
CREATE INDEX outbox_by_due ON outbox (due_ticks, id);
-- Deleting a subscription's pending change rows.
CREATE INDEX outbox_by_subscription ON outbox (tenant_id, subscription_id);
