-- Call records, their sessions and participants.
-- Table names are singular (a row is one call_record). Every key and index starts with tenant_id,
-- so tenants never share an index range and multi-tenancy needs no rewrite.
-- Times are INTEGER ticks of 100 ns since the Unix epoch: Graph's own resolution, exact for
-- keyset comparisons, and cheaper to index than text.

CREATE TABLE call_record (
    tenant_id        TEXT    NOT NULL,
    id               TEXT    NOT NULL,
    version          INTEGER NOT NULL,
    start_ticks      INTEGER NOT NULL,
    end_ticks        INTEGER NOT NULL,
    n_sessions       INTEGER NOT NULL,
    n_participants   INTEGER NOT NULL,
    stored_at_ticks  INTEGER NOT NULL,
    -- The record as served (without sessions and participants_v2, which have rows of their own).
    document         TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- The list's order (spec A2) and keyset: paging and startDateTime filters walk this index only.
CREATE INDEX call_record_by_start ON call_record (tenant_id, start_ticks, id);

CREATE TABLE session (
    tenant_id       TEXT    NOT NULL,
    call_record_id  TEXT    NOT NULL,
    -- Position in the record as sent: the sessions' page order and keyset.
    ordinal         INTEGER NOT NULL,
    id              TEXT    NOT NULL,
    -- The session with its segments inline.
    document        TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, call_record_id, ordinal)
);

CREATE UNIQUE INDEX session_by_id ON session (tenant_id, call_record_id, id);

CREATE TABLE participant (
    tenant_id       TEXT    NOT NULL,
    call_record_id  TEXT    NOT NULL,
    ordinal         INTEGER NOT NULL,
    id              TEXT    NOT NULL,
    -- The record's start, copied here so participants_v2/any(...) pages walk one index in the
    -- list's order instead of scanning records.
    start_ticks     INTEGER NOT NULL,
    document        TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, call_record_id, ordinal)
);

CREATE UNIQUE INDEX participant_by_record_and_id ON participant (tenant_id, call_record_id, id);
CREATE INDEX participant_by_id ON participant (tenant_id, id, start_ticks, call_record_id);
