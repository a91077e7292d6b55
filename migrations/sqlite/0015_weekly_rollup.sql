-- stream_network_day's totals by week (store::analytics::week_start: seven days from
-- 1970-01-01, cut at the start of a month), for queries over whole weeks: a month of a large
-- tenant's subnets is about a million daily rows. Summed from the daily table when the store
-- is next opened.

CREATE TABLE stream_network_week (
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

INSERT INTO store_fact (name, value) VALUES ('quality_weekly_rollups_pending', 0);
