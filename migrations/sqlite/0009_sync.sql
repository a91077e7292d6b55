-- The collector's progress (callrecords sync), kept beside the records it collects so that a
-- collector killed at any point resumes where it was.

-- Named values per collected tenant: the windows completed, the resume point of a sweep, the
-- subscription held upstream.
CREATE TABLE sync_state (
    tenant_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- Records a change notification named and the collector has not fetched yet.
CREATE TABLE sync_pending (
    tenant_id    TEXT    NOT NULL,
    record_id    TEXT    NOT NULL,
    noted_ticks  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, record_id)
);

-- Which collector collects a tenant, until when: one at a time, whatever the number of nodes.
CREATE TABLE sync_lease (
    tenant_id      TEXT    PRIMARY KEY,
    holder         TEXT    NOT NULL,
    expires_ticks  INTEGER NOT NULL
);
