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
    key INTEGER PRIMARY KEY,
    tenant_key INTEGER NOT NULL,
    digest INTEGER NOT NULL,
    server INTEGER NOT NULL,
    connection_type TEXT,
    subnet TEXT,
    wifi_band TEXT,
    product_family TEXT,
    platform TEXT,
    version TEXT,
    service_role TEXT,
    UNIQUE (tenant_key, digest)
);

CREATE TABLE analytics_user (
    key INTEGER PRIMARY KEY,
    tenant_key INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    UNIQUE (tenant_key, user_id)
);

DROP TABLE stream;
DROP TABLE call_leg;
DELETE FROM stream_day;
DELETE FROM call_leg_day;

CREATE TABLE stream (
    tenant_key INTEGER NOT NULL,
    start_ticks INTEGER NOT NULL,
    record_key INTEGER NOT NULL,
    ordinal INTEGER NOT NULL,
    -- 0 audio, 1 video, 2 video-based screen sharing.
    media_type INTEGER NOT NULL,
    -- 0 good, 1 poor, 2 unclassified.
    classification INTEGER NOT NULL,
    -- Bit n set: poor due to condition n (quality::Condition).
    poor_due_to INTEGER NOT NULL,
    first_to_second INTEGER NOT NULL,
    first_is_caller INTEGER NOT NULL,
    conference INTEGER NOT NULL,
    pstn INTEGER NOT NULL,
    excluded INTEGER NOT NULL,
    qoe_reported INTEGER NOT NULL,
    first_endpoint INTEGER NOT NULL,
    second_endpoint INTEGER NOT NULL,
    first_user INTEGER,
    second_user INTEGER,
    PRIMARY KEY (tenant_key, start_ticks, record_key, ordinal)
) WITHOUT ROWID;

CREATE TABLE call_leg (
    tenant_key INTEGER NOT NULL,
    start_ticks INTEGER NOT NULL,
    record_key INTEGER NOT NULL,
    ordinal INTEGER NOT NULL,
    -- 0 completed, 1 setup failed, 2 dropped.
    outcome INTEGER NOT NULL,
    -- Rate My Call, 1 to 5; NULL when not rated.
    first_rating INTEGER,
    second_rating INTEGER,
    first_is_caller INTEGER NOT NULL,
    conference INTEGER NOT NULL,
    pstn INTEGER NOT NULL,
    excluded INTEGER NOT NULL,
    first_endpoint INTEGER NOT NULL,
    second_endpoint INTEGER NOT NULL,
    first_user INTEGER,
    second_user INTEGER,
    PRIMARY KEY (tenant_key, start_ticks, record_key, ordinal)
) WITHOUT ROWID;

-- Every stored record gets its rows again when the store is next opened.
INSERT OR REPLACE INTO store_fact (name, value) VALUES ('quality_rows_pending', 1);
