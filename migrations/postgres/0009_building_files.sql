-- CQD building files, per tenant (the subnets an operator maps to buildings, networks and places):
-- the newest one is active; earlier ones stay as they were uploaded.
CREATE TABLE building_file (
    tenant_id       TEXT    NOT NULL,
    uploaded_ticks  BIGINT  NOT NULL,
    subnets         BIGINT  NOT NULL,
    body            TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, uploaded_ticks)
);
