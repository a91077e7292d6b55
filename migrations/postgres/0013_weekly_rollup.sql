-- stream_network_day's totals by week (store::analytics::week_start: seven days from
-- 1970-01-01, cut at the start of a month so that a week lives in one month's partition), for
-- queries over whole weeks: a month of a large tenant's subnets is about a million daily rows.
-- Summed from the daily table when the store is next opened.

CREATE TABLE stream_network_week (
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

-- Every month the records have gets its month of it (PgStore::ensure_partitions creates the
-- ones to come).
DO $$
DECLARE
    part RECORD;
BEGIN
    FOR part IN
        SELECT c.relname::text AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'record'::regclass
    LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF stream_network_week %s',
            'stream_network_week_' || substring(part.name FROM length('record_') + 1), part.bound);
    END LOOP;
END $$;

INSERT INTO store_fact (name, value) VALUES ('quality_weekly_rollups_pending', 0);
