-- Daily totals of one side of each stream (store::analytics::ROLLUPS): a stream counts once in
-- its first side's totals (side 0) and once in its second's (side 1). A query that groups or
-- filters by one side's client or subnet reads these instead of every stream; subnets and
-- versions of both sides together would make a row of nearly every stream. As in stream_day, a
-- missing text is ''.

CREATE TABLE stream_client_day (
    tenant_key BIGINT NOT NULL,
    side SMALLINT NOT NULL,
    start_ticks BIGINT NOT NULL,
    media_type SMALLINT NOT NULL,
    conference BOOLEAN NOT NULL,
    pstn BOOLEAN NOT NULL,
    excluded BOOLEAN NOT NULL,
    qoe_reported BOOLEAN NOT NULL,
    server BOOLEAN NOT NULL,
    connection_type TEXT NOT NULL,
    wifi_band TEXT NOT NULL,
    product_family TEXT NOT NULL,
    platform TEXT NOT NULL,
    version TEXT NOT NULL,
    service_role TEXT NOT NULL,
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
    PRIMARY KEY (tenant_key, side, start_ticks, media_type, conference, pstn, excluded, qoe_reported, server, connection_type, wifi_band, product_family, platform, version, service_role)
) PARTITION BY RANGE (start_ticks);

CREATE TABLE stream_network_day (
    tenant_key BIGINT NOT NULL,
    side SMALLINT NOT NULL,
    start_ticks BIGINT NOT NULL,
    media_type SMALLINT NOT NULL,
    conference BOOLEAN NOT NULL,
    pstn BOOLEAN NOT NULL,
    excluded BOOLEAN NOT NULL,
    qoe_reported BOOLEAN NOT NULL,
    server BOOLEAN NOT NULL,
    connection_type TEXT NOT NULL,
    subnet TEXT NOT NULL,
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
    PRIMARY KEY (tenant_key, side, start_ticks, media_type, conference, pstn, excluded, qoe_reported, server, connection_type, subnet)
) PARTITION BY RANGE (start_ticks);

-- Daily totals by both sides' inside flags (0 outside, 1 inside, 2 unknown; 3 while a subnet is
-- not yet placed), which depend on the tenant's building file: classified a day at a time when
-- a query asks for them (store::analytics::classified_days), not by the writes of rows.
CREATE TABLE stream_place_day (
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
    first_inside SMALLINT NOT NULL,
    second_inside SMALLINT NOT NULL,
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
    PRIMARY KEY (tenant_key, start_ticks, media_type, conference, pstn, excluded, qoe_reported, first_server, second_server, first_connection_type, second_connection_type, first_inside, second_inside)
) PARTITION BY RANGE (start_ticks);

-- A day of a tenant's streams in the place rollup: stale once rows of the day are written after
-- it was classified (every write of rows sets it), and the building file (its uploaded_ticks; 0
-- none, -1 never classified) it was classified with.
CREATE TABLE place_day (
    tenant_key BIGINT NOT NULL,
    start_ticks BIGINT NOT NULL,
    stale SMALLINT NOT NULL,
    building_file BIGINT NOT NULL,
    PRIMARY KEY (tenant_key, start_ticks)
);

-- Where each subnet of a tenant's endpoint profiles is by a building file, as above.
CREATE TABLE subnet_place (
    tenant_key BIGINT NOT NULL,
    building_file BIGINT NOT NULL,
    subnet TEXT NOT NULL,
    inside SMALLINT NOT NULL,
    PRIMARY KEY (tenant_key, building_file, subnet)
);

-- Every month the records have gets its months of these (PgStore::ensure_partitions creates the
-- ones to come).
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
        EXECUTE format('CREATE TABLE %I PARTITION OF stream_client_day %s', 'stream_client_day_' || suffix, part.bound);
        EXECUTE format('CREATE TABLE %I PARTITION OF stream_network_day %s', 'stream_network_day_' || suffix, part.bound);
        EXECUTE format('CREATE TABLE %I PARTITION OF stream_place_day %s', 'stream_place_day_' || suffix, part.bound);
    END LOOP;
END $$;

-- The store sums every rollup from the rows when next opened, a day at a time from the first.
INSERT INTO store_fact (name, value) VALUES ('quality_rollups_pending', 0);
