-- Certificates of the local issuer's apps: an app may prove itself with a client assertion (a
-- JWT signed with the certificate's private key, as Entra ID accepts) instead of a secret. The
-- assertion names its certificate by the SHA-256 thumbprint of the certificate's DER
-- (base64url, the `x5t#S256` header).
CREATE TABLE app_certificate (
    tenant_id          TEXT    NOT NULL,
    client_id          TEXT    NOT NULL,
    thumbprint_sha256  TEXT    NOT NULL,
    certificate_pem    TEXT    NOT NULL,
    added_ticks        BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, client_id, thumbprint_sha256)
);
