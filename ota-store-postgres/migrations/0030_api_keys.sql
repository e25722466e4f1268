-- Management API keys: only the SHA-256 of each key is kept, by which a request's key is
-- found. Revoked keys stay (revoked_at set) and keep their names. Times are nanoseconds since
-- the Unix epoch, like every other table.
CREATE TABLE ota_api_keys (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    name text NOT NULL,
    role text NOT NULL,
    digest bytea NOT NULL UNIQUE CHECK (length(digest) = 32),
    created_at bigint NOT NULL,
    revoked_at bigint,
    UNIQUE (tenant_id, name)
);
CREATE INDEX ota_api_keys_tenant ON ota_api_keys (tenant_id, id);
