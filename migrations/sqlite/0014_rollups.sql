-- Daily totals of one side of each stream (store::analytics::ROLLUPS): a stream counts once in
-- its first side's totals (side 0) and once in its second's (side 1). A query that groups or
-- filters by one side's client or subnet reads these instead of every stream; subnets and
-- versions of both sides together would make a row of nearly every stream. As in stream_day, a
-- missing text is ''.

CREATE TABLE stream_client_day (
    tenant_key INTEGER NOT NULL,
    side INTEGER NOT NULL,
    start_ticks INTEGER NOT NULL,
    media_type INTEGER NOT NULL,
    conference INTEGER NOT NULL,
    pstn INTEGER NOT NULL,
    excluded INTEGER NOT NULL,
    qoe_reported INTEGER NOT NULL,
    server INTEGER NOT NULL,
    connection_type TEXT NOT NULL,
    wifi_band TEXT NOT NULL,
    product_family TEXT NOT NULL,
    platform TEXT NOT NULL,
    version TEXT NOT NULL,
    service_role TEXT NOT NULL,
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
    PRIMARY KEY (tenant_key, side, start_ticks, media_type, conference, pstn, excluded, qoe_reported, server, connection_type, wifi_band, product_family, platform, version, service_role)
) WITHOUT ROWID;

CREATE TABLE stream_network_day (
    tenant_key INTEGER NOT NULL,
    side INTEGER NOT NULL,
    start_ticks INTEGER NOT NULL,
    media_type INTEGER NOT NULL,
    conference INTEGER NOT NULL,
    pstn INTEGER NOT NULL,
    excluded INTEGER NOT NULL,
    qoe_reported INTEGER NOT NULL,
    server INTEGER NOT NULL,
    connection_type TEXT NOT NULL,
    subnet TEXT NOT NULL,
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
    PRIMARY KEY (tenant_key, side, start_ticks, media_type, conference, pstn, excluded, qoe_reported, server, connection_type, subnet)
) WITHOUT ROWID;

-- Daily totals by both sides' inside flags (0 outside, 1 inside, 2 unknown; 3 while a subnet is
-- not yet placed), which depend on the tenant's building file: classified a day at a time when
-- a query asks for them (store::analytics::classified_days), not by the writes of rows.
CREATE TABLE stream_place_day (
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
    first_inside INTEGER NOT NULL,
    second_inside INTEGER NOT NULL,
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
    PRIMARY KEY (tenant_key, start_ticks, media_type, conference, pstn, excluded, qoe_reported, first_server, second_server, first_connection_type, second_connection_type, first_inside, second_inside)
) WITHOUT ROWID;

-- A day of a tenant's streams in the place rollup: stale once rows of the day are written after
-- it was classified (every write of rows sets it), and the building file (its uploaded_ticks; 0
-- none, -1 never classified) it was classified with.
CREATE TABLE place_day (
    tenant_key INTEGER NOT NULL,
    start_ticks INTEGER NOT NULL,
    stale INTEGER NOT NULL,
    building_file INTEGER NOT NULL,
    PRIMARY KEY (tenant_key, start_ticks)
) WITHOUT ROWID;

-- Where each subnet of a tenant's endpoint profiles is by a building file, as above.
CREATE TABLE subnet_place (
    tenant_key INTEGER NOT NULL,
    building_file INTEGER NOT NULL,
    subnet TEXT NOT NULL,
    inside INTEGER NOT NULL,
    PRIMARY KEY (tenant_key, building_file, subnet)
) WITHOUT ROWID;

-- The store sums every rollup from the rows when next opened, a day at a time from the first.
INSERT INTO store_fact (name, value) VALUES ('quality_rollups_pending', 0);
