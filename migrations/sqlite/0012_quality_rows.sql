-- Analytics rows, written with the record version they come from and replaced with it, in the
-- same transaction (quality::QualityRows): one row per classified stream (CQD's classification,
-- its endpoints in CQD's First and Second order, its metrics) and one per session (a call leg:
-- how it ended, Rate My Call). start_ticks is the record's start: the time analytics filters
-- and groups by.
-- ip_address, mac_address, user_id and user_name are personal data: the scrub clears them.
-- Records stored before this migration get their rows when the store is next opened
-- (store_fact quality_rows_pending).
-- Clustered by time, so a query over a range reads it in order.
CREATE TABLE stream (
    tenant_key INTEGER NOT NULL,
    start_ticks INTEGER NOT NULL,
    record_key INTEGER NOT NULL,
    ordinal INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    segment_id TEXT NOT NULL,
    segment_start_ticks INTEGER NOT NULL,
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
    first_server INTEGER NOT NULL,
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
    second_server INTEGER NOT NULL,
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
    average_jitter_ms REAL,
    max_jitter_ms REAL,
    average_packet_loss_rate REAL,
    max_packet_loss_rate REAL,
    average_round_trip_time_ms REAL,
    max_round_trip_time_ms REAL,
    average_audio_degradation REAL,
    average_ratio_of_concealed_samples REAL,
    average_video_frame_loss_percentage REAL,
    average_video_frame_rate REAL,
    post_fec_packet_loss_rate REAL,
    PRIMARY KEY (tenant_key, start_ticks, record_key, ordinal)
) WITHOUT ROWID;

CREATE TABLE call_leg (
    tenant_key INTEGER NOT NULL,
    start_ticks INTEGER NOT NULL,
    record_key INTEGER NOT NULL,
    ordinal INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    -- 0 completed, 1 setup failed, 2 dropped.
    outcome INTEGER NOT NULL,
    -- Rate My Call, 1 to 5; NULL when not rated.
    first_rating INTEGER,
    second_rating INTEGER,
    first_is_caller INTEGER NOT NULL,
    conference INTEGER NOT NULL,
    pstn INTEGER NOT NULL,
    excluded INTEGER NOT NULL,
    first_server INTEGER NOT NULL,
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
    second_server INTEGER NOT NULL,
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
    PRIMARY KEY (tenant_key, start_ticks, record_key, ordinal)
) WITHOUT ROWID;

-- Daily totals of the rows, kept in the transactions that write and delete them
-- (store::analytics::daily_change), so that a query over whole days that groups and filters only
-- by the columns kept here reads a few rows a day instead of every stream. start_ticks is the
-- UTC day's first tick; a missing connection type is ''.
CREATE TABLE stream_day (
    tenant_key INTEGER NOT NULL,
    start_ticks INTEGER NOT NULL,
    media_type INTEGER NOT NULL,
    conference INTEGER NOT NULL,
    pstn INTEGER NOT NULL,
    excluded INTEGER NOT NULL,
    qoe_reported INTEGER NOT NULL,
    first_server INTEGER NOT NULL,
    second_server INTEGER NOT NULL,
    first_connection_type TEXT NOT NULL,
    second_connection_type TEXT NOT NULL,
    streams INTEGER NOT NULL,
    good INTEGER NOT NULL,
    poor INTEGER NOT NULL,
    unclassified INTEGER NOT NULL,
    poor_jitter INTEGER NOT NULL,
    poor_packet_loss INTEGER NOT NULL,
    poor_degradation INTEGER NOT NULL,
    poor_round_trip INTEGER NOT NULL,
    poor_concealed INTEGER NOT NULL,
    poor_frame_loss INTEGER NOT NULL,
    poor_frame_rate INTEGER NOT NULL,
    poor_post_fec INTEGER NOT NULL,
    PRIMARY KEY (tenant_key, start_ticks, media_type, conference, pstn, excluded, qoe_reported, first_server, second_server, first_connection_type, second_connection_type)
) WITHOUT ROWID;

CREATE TABLE call_leg_day (
    tenant_key INTEGER NOT NULL,
    start_ticks INTEGER NOT NULL,
    conference INTEGER NOT NULL,
    pstn INTEGER NOT NULL,
    excluded INTEGER NOT NULL,
    first_server INTEGER NOT NULL,
    second_server INTEGER NOT NULL,
    sessions INTEGER NOT NULL,
    setup_failed INTEGER NOT NULL,
    dropped INTEGER NOT NULL,
    ratings INTEGER NOT NULL,
    rating_sum INTEGER NOT NULL,
    poor_ratings INTEGER NOT NULL,
    PRIMARY KEY (tenant_key, start_ticks, conference, pstn, excluded, first_server, second_server)
) WITHOUT ROWID;

INSERT INTO store_fact (name, value) VALUES ('quality_rows_pending', 1);
