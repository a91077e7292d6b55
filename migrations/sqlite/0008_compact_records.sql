-- Call records kept compact. A record's document is a zstd frame (store::codec), most of them
-- written with a dictionary trained from the store's own documents; its sessions and
-- participants are kept in parts of a page each (60 sessions, 130 participants), each part one
-- frame, rather than a row each; and a tenant is a small integer key instead of its 36-character
-- id in every key and index. Every key still starts with the tenant.
--
-- The previous tables (call_record, session, participant) stay until the store has moved their
-- records here, in batches that each commit on their own (SqliteStore::convert_previous_layout),
-- and are dropped once they are empty.

CREATE TABLE tenant (
    key  INTEGER PRIMARY KEY,
    id   TEXT    NOT NULL UNIQUE
);

-- Compression dictionaries, never changed or deleted: a frame names the id of the dictionary it
-- was written with in its header. Ids count from 1 without gaps.
CREATE TABLE dictionary (
    id             INTEGER PRIMARY KEY,
    -- record, session or participant: the documents it was trained on and is used for.
    kind           TEXT    NOT NULL,
    created_ticks  INTEGER NOT NULL,
    -- SHA-256 of body, hex, checked whenever the store is opened.
    sha256         TEXT    NOT NULL,
    body           BLOB    NOT NULL
);

-- Facts about the store as a whole. dictionaries_issued: the id of the newest dictionary ever
-- stored, written in the transaction that stores it, so that a lost dictionary, the newest
-- included, is noticed when the store is opened.
CREATE TABLE store_fact (
    name   TEXT   PRIMARY KEY,
    value  BIGINT NOT NULL
);

CREATE TABLE record (
    -- The rowid (declared, so VACUUM keeps it): what the record's parts are keyed by.
    key              INTEGER PRIMARY KEY,
    tenant_key       INTEGER NOT NULL,
    id               TEXT    NOT NULL,
    version          INTEGER NOT NULL,
    start_ticks      INTEGER NOT NULL,
    end_ticks        INTEGER NOT NULL,
    n_sessions       INTEGER NOT NULL,
    n_participants   INTEGER NOT NULL,
    stored_at_ticks  INTEGER NOT NULL,
    -- Where organizer_v2 starts in the document's text (0: none; NULL: not known, for records
    -- stored before it was kept).
    organizer_at     INTEGER,
    -- The record as served, without sessions and participants_v2: a zstd frame.
    document         BLOB    NOT NULL
);

CREATE UNIQUE INDEX record_by_id ON record (tenant_key, id);
-- The list's order and keyset: paging and startDateTime filters walk this index only.
CREATE INDEX record_by_start ON record (tenant_key, start_ticks, id);
-- Retention takes the oldest records of every tenant.
CREATE INDEX record_by_start_all_tenants ON record (start_ticks);

-- A record's sessions (kind 0, with their segments) or participants (kind 1), first_ordinal
-- onwards in the order sent: one zstd frame of up to a page of (id, document) pairs.
CREATE TABLE record_part (
    tenant_key     INTEGER NOT NULL,
    record_key     INTEGER NOT NULL,
    kind           INTEGER NOT NULL,
    first_ordinal  INTEGER NOT NULL,
    body           BLOB    NOT NULL,
    PRIMARY KEY (tenant_key, record_key, kind, first_ordinal)
);

-- participants_v2/any(p:p/id eq '…'): one entry per participant of a record, in the list's order
-- of start (ties, which are rare, are put in record id order by a sort of just those rows), so a
-- filtered page walks this index from its cursor. The record is named by its key rather than its
-- id: these entries are the most numerous rows of the store.
CREATE TABLE participant_ref (
    tenant_key      INTEGER NOT NULL,
    participant_id  TEXT    NOT NULL,
    start_ticks     INTEGER NOT NULL,
    record_key      INTEGER NOT NULL,
    PRIMARY KEY (tenant_key, participant_id, start_ticks, record_key)
) WITHOUT ROWID;
