-- Usage-log rows served by getPstnCalls, getDirectRoutingCalls and (beta) getSmsLog.
-- One table for the three kinds: they are read the same way (a time range of one kind, in time
-- order), and a row's document is served as stored.

CREATE TABLE log_row (
    tenant_id    TEXT    NOT NULL,
    -- pstnCalls, directRoutingCalls or smsLogs.
    kind         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    -- startDateTime (sentDateTime for SMS) in 100 ns ticks since the Unix epoch.
    start_ticks  INTEGER NOT NULL,
    document     TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, kind, id)
);

-- A function call walks one kind's time range from its keyset position: a day's page costs the
-- same in a store of a month or of years.
CREATE INDEX log_row_by_start ON log_row (tenant_id, kind, start_ticks, id);
