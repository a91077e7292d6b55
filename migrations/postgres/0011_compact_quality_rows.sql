-- The analytics rows name their endpoints by key instead of repeating a dozen texts a side:
-- an endpoint profile is what CQD groups an endpoint by (server or not, network, client), kept
-- once a tenant, and a user is an Entra user id. Both are written before the rows that name
-- them and never deleted (an unused one costs a row). A stream's metrics, addresses and names
-- are not kept here: a call's streams are read from its record (analytics::call_streams), which
-- also makes the rows free of personal data but for user ids.
-- digest is 64 bits of the SHA-256 of the profile's values (store::analytics::profile_digest),
-- the unique key: a UNIQUE over columns that may be NULL would not be one, and one over the
-- values would be as large as the table.
CREATE TABLE endpoint_profile (
    tenant_key BIGINT NOT NULL,
    key BIGINT GENERATED ALWAYS AS IDENTITY,
    digest BIGINT NOT NULL,
    server BOOLEAN NOT NULL,
    connection_type TEXT,
    subnet TEXT,
    wifi_band TEXT,
    product_family TEXT,
    platform TEXT,
    version TEXT,
    service_role TEXT,
    PRIMARY KEY (tenant_key, key),
    UNIQUE (tenant_key, digest)
);

CREATE TABLE analytics_user (
    tenant_key BIGINT NOT NULL,
    key BIGINT GENERATED ALWAYS AS IDENTITY,
    user_id TEXT NOT NULL,
    PRIMARY KEY (tenant_key, key),
    UNIQUE (tenant_key, user_id)
);

DROP TABLE stream;
DROP TABLE call_leg;
TRUNCATE stream_day, call_leg_day;

CREATE TABLE stream (
    tenant_key BIGINT NOT NULL,
    start_ticks BIGINT NOT NULL,
    record_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    -- 0 audio, 1 video, 2 video-based screen sharing.
    media_type SMALLINT NOT NULL,
    -- 0 good, 1 poor, 2 unclassified.
    classification SMALLINT NOT NULL,
    -- Bit n set: poor due to condition n (quality::Condition).
    poor_due_to SMALLINT NOT NULL,
    first_to_second BOOLEAN NOT NULL,
    first_is_caller BOOLEAN NOT NULL,
    conference BOOLEAN NOT NULL,
    pstn BOOLEAN NOT NULL,
    excluded BOOLEAN NOT NULL,
    qoe_reported BOOLEAN NOT NULL,
    first_endpoint BIGINT NOT NULL,
    second_endpoint BIGINT NOT NULL,
    first_user BIGINT,
    second_user BIGINT,
    PRIMARY KEY (tenant_key, record_id, start_ticks, ordinal)
) PARTITION BY RANGE (start_ticks);

CREATE INDEX stream_by_start ON stream (tenant_key, start_ticks);

CREATE TABLE call_leg (
    tenant_key BIGINT NOT NULL,
    start_ticks BIGINT NOT NULL,
    record_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    -- 0 completed, 1 setup failed, 2 dropped.
    outcome SMALLINT NOT NULL,
    -- Rate My Call, 1 to 5; NULL when not rated.
    first_rating SMALLINT,
    second_rating SMALLINT,
    first_is_caller BOOLEAN NOT NULL,
    conference BOOLEAN NOT NULL,
    pstn BOOLEAN NOT NULL,
    excluded BOOLEAN NOT NULL,
    first_endpoint BIGINT NOT NULL,
    second_endpoint BIGINT NOT NULL,
    first_user BIGINT,
    second_user BIGINT,
    PRIMARY KEY (tenant_key, record_id, start_ticks, ordinal)
) PARTITION BY RANGE (start_ticks);

CREATE INDEX call_leg_by_start ON call_leg (tenant_key, start_ticks);

-- The months the records have (PgStore::ensure_partitions creates the ones to come).
DO $$
DECLARE
    part RECORD;
    suffix TEXT;
BEGIN
    FOR part IN
        SELECT c.relname::text AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'record'::regclass
    LOOP
        suffix := substring(part.name FROM length('record_') + 1);
        EXECUTE format('CREATE TABLE %I PARTITION OF stream %s', 'stream_' || suffix, part.bound);
        EXECUTE format('CREATE TABLE %I PARTITION OF call_leg %s', 'call_leg_' || suffix, part.bound);
    END LOOP;
END $$;

-- Every stored record gets its rows again when the store is next opened.
INSERT INTO store_fact (name, value) VALUES ('quality_rows_pending', 1)
    ON CONFLICT (name) DO UPDATE SET value = 1;
