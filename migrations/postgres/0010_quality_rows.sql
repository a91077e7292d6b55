-- Analytics rows, written with the record version they come from and replaced with it, in the
-- same transaction (quality::QualityRows): one row per classified stream (CQD's classification,
-- its endpoints in CQD's First and Second order, its metrics) and one per session (a call leg:
-- how it ended, Rate My Call). start_ticks is the record's start: the time analytics filters
-- and groups by, and the partition key, so retention drops them with the record.
-- ip_address, mac_address, user_id and user_name are personal data: the scrub clears them.
-- Records stored before this migration get their rows when the store is next opened
-- (store_fact quality_rows_pending).
CREATE TABLE stream (
    tenant_key BIGINT NOT NULL,
    start_ticks BIGINT NOT NULL,
    record_id TEXT NOT NULL,
    ordinal BIGINT NOT NULL,
    session_id TEXT NOT NULL,
    segment_id TEXT NOT NULL,
    segment_start_ticks BIGINT NOT NULL,
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
    first_server BOOLEAN NOT NULL,
    first_connection_type TEXT,
    first_subnet TEXT,
    first_wifi_band TEXT,
    first_product_family TEXT,
    first_platform TEXT,
    first_version TEXT,
    first_service_role TEXT,
    first_ip_address TEXT,
    first_mac_address TEXT,
    first_user_id TEXT,
    first_user_name TEXT,
    second_server BOOLEAN NOT NULL,
    second_connection_type TEXT,
    second_subnet TEXT,
    second_wifi_band TEXT,
    second_product_family TEXT,
    second_platform TEXT,
    second_version TEXT,
    second_service_role TEXT,
    second_ip_address TEXT,
    second_mac_address TEXT,
    second_user_id TEXT,
    second_user_name TEXT,
    average_jitter_ms DOUBLE PRECISION,
    max_jitter_ms DOUBLE PRECISION,
    average_packet_loss_rate DOUBLE PRECISION,
    max_packet_loss_rate DOUBLE PRECISION,
    average_round_trip_time_ms DOUBLE PRECISION,
    max_round_trip_time_ms DOUBLE PRECISION,
    average_audio_degradation DOUBLE PRECISION,
    average_ratio_of_concealed_samples DOUBLE PRECISION,
    average_video_frame_loss_percentage DOUBLE PRECISION,
    average_video_frame_rate DOUBLE PRECISION,
    post_fec_packet_loss_rate DOUBLE PRECISION,
    PRIMARY KEY (tenant_key, record_id, start_ticks, ordinal)
) PARTITION BY RANGE (start_ticks);

CREATE INDEX stream_by_start ON stream (tenant_key, start_ticks);

CREATE TABLE call_leg (
    tenant_key BIGINT NOT NULL,
    start_ticks BIGINT NOT NULL,
    record_id TEXT NOT NULL,
    ordinal BIGINT NOT NULL,
    session_id TEXT NOT NULL,
    -- 0 completed, 1 setup failed, 2 dropped.
    outcome SMALLINT NOT NULL,
    -- Rate My Call, 1 to 5; NULL when not rated.
    first_rating SMALLINT,
    second_rating SMALLINT,
    first_is_caller BOOLEAN NOT NULL,
    conference BOOLEAN NOT NULL,
    pstn BOOLEAN NOT NULL,
    excluded BOOLEAN NOT NULL,
    first_server BOOLEAN NOT NULL,
    first_connection_type TEXT,
    first_subnet TEXT,
    first_wifi_band TEXT,
    first_product_family TEXT,
    first_platform TEXT,
    first_version TEXT,
    first_service_role TEXT,
    first_ip_address TEXT,
    first_mac_address TEXT,
    first_user_id TEXT,
    first_user_name TEXT,
    second_server BOOLEAN NOT NULL,
    second_connection_type TEXT,
    second_subnet TEXT,
    second_wifi_band TEXT,
    second_product_family TEXT,
    second_platform TEXT,
    second_version TEXT,
    second_service_role TEXT,
    second_ip_address TEXT,
    second_mac_address TEXT,
    second_user_id TEXT,
    second_user_name TEXT,
    PRIMARY KEY (tenant_key, record_id, start_ticks, ordinal)
) PARTITION BY RANGE (start_ticks);

CREATE INDEX call_leg_by_start ON call_leg (tenant_key, start_ticks);

-- Daily totals of the rows, kept in the transactions that write and delete them
-- (store::analytics::daily_change), so that a query over whole days that groups and filters only
-- by the columns kept here reads a few rows a day instead of every stream. start_ticks is the
-- UTC day's first tick; a missing connection type is ''.
CREATE TABLE stream_day (
    tenant_key BIGINT NOT NULL,
    start_ticks BIGINT NOT NULL,
    media_type SMALLINT NOT NULL,
    conference BOOLEAN NOT NULL,
    pstn BOOLEAN NOT NULL,
    excluded BOOLEAN NOT NULL,
    qoe_reported BOOLEAN NOT NULL,
    first_server BOOLEAN NOT NULL,
    second_server BOOLEAN NOT NULL,
    first_connection_type TEXT NOT NULL,
    second_connection_type TEXT NOT NULL,
    streams BIGINT NOT NULL,
    good BIGINT NOT NULL,
    poor BIGINT NOT NULL,
    unclassified BIGINT NOT NULL,
    poor_jitter BIGINT NOT NULL,
    poor_packet_loss BIGINT NOT NULL,
    poor_degradation BIGINT NOT NULL,
    poor_round_trip BIGINT NOT NULL,
    poor_concealed BIGINT NOT NULL,
    poor_frame_loss BIGINT NOT NULL,
    poor_frame_rate BIGINT NOT NULL,
    poor_post_fec BIGINT NOT NULL,
    PRIMARY KEY (tenant_key, start_ticks, media_type, conference, pstn, excluded, qoe_reported, first_server, second_server, first_connection_type, second_connection_type)
) PARTITION BY RANGE (start_ticks);

CREATE TABLE call_leg_day (
    tenant_key BIGINT NOT NULL,
    start_ticks BIGINT NOT NULL,
    conference BOOLEAN NOT NULL,
    pstn BOOLEAN NOT NULL,
    excluded BOOLEAN NOT NULL,
    first_server BOOLEAN NOT NULL,
    second_server BOOLEAN NOT NULL,
    sessions BIGINT NOT NULL,
    setup_failed BIGINT NOT NULL,
    dropped BIGINT NOT NULL,
    ratings BIGINT NOT NULL,
    rating_sum BIGINT NOT NULL,
    poor_ratings BIGINT NOT NULL,
    PRIMARY KEY (tenant_key, start_ticks, conference, pstn, excluded, first_server, second_server)
) PARTITION BY RANGE (start_ticks);

-- Every month the records have gets its months of these four (PgStore::ensure_partitions
-- creates the ones to come).
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
        EXECUTE format('CREATE TABLE %I PARTITION OF stream_day %s', 'stream_day_' || suffix, part.bound);
        EXECUTE format('CREATE TABLE %I PARTITION OF call_leg_day %s', 'call_leg_day_' || suffix, part.bound);
    END LOOP;
END $$;

INSERT INTO store_fact (name, value) VALUES ('quality_rows_pending', 1);
