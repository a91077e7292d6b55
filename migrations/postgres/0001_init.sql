-- Call records, their sessions and participants, and usage-log rows, for PostgreSQL.
-- Same tables, columns and meanings as the SQLite schema; what differs is shaped for scale.
--
-- Tenancy: tenant_id leads every key and index. It is the distribution column Citus would shard
-- on (create_distributed_table(..., 'tenant_id')): every key includes it, as Citus requires, and
-- every query the API runs names one tenant, so it would route to one shard. The retention
-- indexes at the end are the one deliberate exception (see there).
--
-- Time: *_ticks are BIGINT ticks of 100 ns since the Unix epoch, as in SQLite.
--
-- Partitioning: call_record, session, participant and log_row are partitioned by RANGE on
-- start_ticks, one partition per calendar month (UTC), named <table>_y2024m03. The store
-- creates partitions on demand (no DEFAULT partition: a default partition holding rows of a
-- month would make creating that month's partition fail). session and participant carry their
-- record's start_ticks so that a month's records and their children live in partitions of the
-- same month, and retention drops the three together instead of deleting row by row.
--
-- Keys: PostgreSQL requires a unique index on a partitioned table to include the partition key,
-- so primary keys end in start_ticks. (tenant_id, id) alone can therefore not be declared unique
-- on call_record; the store keeps it unique by taking a transaction-scoped advisory lock on
-- (tenant, id) before it looks a record up and deletes-then-inserts it. For session and
-- participant, start_ticks is constant within a record, so appending it changes no uniqueness.
--
-- Documents are TEXT, not JSONB: they are served verbatim, and JSONB would rewrite number text
-- such as 0.00 and reorder keys.

CREATE TABLE call_record (
    tenant_id        TEXT   NOT NULL,
    id               TEXT   NOT NULL,
    start_ticks      BIGINT NOT NULL,
    version          BIGINT NOT NULL,
    end_ticks        BIGINT NOT NULL,
    n_sessions       BIGINT NOT NULL,
    n_participants   BIGINT NOT NULL,
    stored_at_ticks  BIGINT NOT NULL,
    -- The record as served (without sessions and participants_v2, which have rows of their own).
    document         TEXT   NOT NULL,
    -- Also the lookup by (tenant_id, id): a GET, and the version check of an upsert.
    PRIMARY KEY (tenant_id, id, start_ticks)
) PARTITION BY RANGE (start_ticks);

-- The list's order (spec A2) and keyset: paging and startDateTime filters walk this index only,
-- and a start range prunes to the months it covers.
CREATE INDEX call_record_by_start ON call_record (tenant_id, start_ticks, id);

CREATE TABLE session (
    tenant_id       TEXT   NOT NULL,
    call_record_id  TEXT   NOT NULL,
    -- The record's start: the partition key, so a record's children share its month.
    start_ticks     BIGINT NOT NULL,
    -- Position in the record as sent: the sessions' page order and keyset.
    ordinal         BIGINT NOT NULL,
    id              TEXT   NOT NULL,
    -- The session with its segments inline.
    document        TEXT   NOT NULL,
    PRIMARY KEY (tenant_id, call_record_id, ordinal, start_ticks)
) PARTITION BY RANGE (start_ticks);

CREATE UNIQUE INDEX session_by_id ON session (tenant_id, call_record_id, id, start_ticks);

CREATE TABLE participant (
    tenant_id       TEXT   NOT NULL,
    call_record_id  TEXT   NOT NULL,
    -- The record's start: the partition key, and the list's order for participants_v2/any(...)
    -- pages, which walk participant_by_id instead of scanning records.
    start_ticks     BIGINT NOT NULL,
    ordinal         BIGINT NOT NULL,
    id              TEXT   NOT NULL,
    document        TEXT   NOT NULL,
    PRIMARY KEY (tenant_id, call_record_id, ordinal, start_ticks)
) PARTITION BY RANGE (start_ticks);

CREATE UNIQUE INDEX participant_by_record_and_id ON participant (tenant_id, call_record_id, id, start_ticks);
CREATE INDEX participant_by_id ON participant (tenant_id, id, start_ticks, call_record_id);

-- Usage-log rows served by getPstnCalls, getDirectRoutingCalls and (beta) getSmsLog: one table
-- for the three kinds, read the same way (a time range of one kind, in time order).
CREATE TABLE log_row (
    tenant_id    TEXT   NOT NULL,
    -- pstnCalls, directRoutingCalls or smsLogs.
    kind         TEXT   NOT NULL,
    id           TEXT   NOT NULL,
    -- startDateTime (sentDateTime for SMS).
    start_ticks  BIGINT NOT NULL,
    document     TEXT   NOT NULL,
    -- Also the idempotence check by (tenant_id, kind, id), made under an advisory lock on that
    -- triple because start_ticks has to be part of the key.
    PRIMARY KEY (tenant_id, kind, id, start_ticks)
) PARTITION BY RANGE (start_ticks);

-- A function call walks one kind's time range from its keyset position: a day's page costs the
-- same in a store of a month or of years.
CREATE INDEX log_row_by_start ON log_row (tenant_id, kind, start_ticks, id);

-- Retention: whole expired months are dropped as partitions; these indexes serve only the
-- partially expired boundary month, where each purge batch takes the oldest rows of every
-- tenant. They break the tenant-first rule on purpose: without them each batch would scan the
-- month's partition. Under Citus they would be shard-local, like every index.
CREATE INDEX call_record_by_start_all_tenants ON call_record (start_ticks);
CREATE INDEX log_row_by_start_all_tenants ON log_row (start_ticks);
