-- The local token issuer (`--auth local`): its RS256 signing keys and the applications it
-- issues tokens to. Keys are global (one issuer serves every tenant); apps belong to a tenant.
CREATE TABLE signing_key (
    kid             TEXT    PRIMARY KEY,
    private_key_pem TEXT    NOT NULL,
    created_ticks   INTEGER NOT NULL,
    retired_ticks   INTEGER
);

CREATE TABLE app (
    tenant_id     TEXT    NOT NULL,
    client_id     TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    roles         TEXT    NOT NULL, -- JSON array of role names
    secret_sha256 TEXT    NOT NULL,
    created_ticks INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, client_id)
);
