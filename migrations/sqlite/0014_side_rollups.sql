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

-- The store sums every rollup from the rows when next opened, a day at a time from the first.
INSERT INTO store_fact (name, value) VALUES ('quality_rollups_pending', 0);
