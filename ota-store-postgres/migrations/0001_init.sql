-- The OTA store's schema, version 1. Times are nanoseconds since the Unix epoch (bigint),
-- so that every timestamp round-trips exactly. Entities whose fields are never queried are
-- kept whole as `doc` (jsonb, the serde form of the ota-core type) next to the columns
-- that queries need.

-- A time-ordered UUID (version 7) made in the database, for rows created set-wise.
CREATE FUNCTION ota_uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      52, 1), 53, 1),
    'hex')::uuid
$$;

CREATE TABLE ota_packages (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    kind text NOT NULL,
    title text NOT NULL,
    version text NOT NULL,
    chunk_size integer,
    doc jsonb NOT NULL,
    CONSTRAINT ota_packages_title_version UNIQUE (tenant_id, kind, title, version)
);
CREATE INDEX ota_packages_tenant ON ota_packages (tenant_id, id);

CREATE TABLE ota_package_chunks (
    package_id uuid NOT NULL REFERENCES ota_packages (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (package_id, seq)
);
-- Images are mostly compressed already: store chunks uncompressed, which also lets
-- `substring` read just the slice a range asks for.
ALTER TABLE ota_package_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE ota_profiles (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    name text NOT NULL,
    created_at bigint NOT NULL,
    CONSTRAINT ota_profiles_name UNIQUE (tenant_id, name)
);
CREATE INDEX ota_profiles_tenant ON ota_profiles (tenant_id, id);

CREATE TABLE ota_groups (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    name text NOT NULL,
    created_at bigint NOT NULL,
    CONSTRAINT ota_groups_name UNIQUE (tenant_id, name)
);
CREATE INDEX ota_groups_tenant ON ota_groups (tenant_id, id);

CREATE TABLE ota_devices (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    name text NOT NULL,
    profile_id uuid NOT NULL REFERENCES ota_profiles (id),
    access_token text NOT NULL,
    fw_title text,
    fw_version text,
    sw_title text,
    sw_version text,
    created_at bigint NOT NULL,
    CONSTRAINT ota_devices_name UNIQUE (tenant_id, name),
    CONSTRAINT ota_devices_token UNIQUE (access_token)
);
CREATE INDEX ota_devices_tenant ON ota_devices (tenant_id, id);
CREATE INDEX ota_devices_profile ON ota_devices (profile_id, id);

CREATE TABLE ota_device_groups (
    device_id uuid NOT NULL REFERENCES ota_devices (id) ON DELETE CASCADE,
    group_id uuid NOT NULL REFERENCES ota_groups (id),
    PRIMARY KEY (device_id, group_id)
);
CREATE INDEX ota_device_groups_group ON ota_device_groups (group_id, device_id);

CREATE TABLE ota_assignments (
    tenant_id uuid NOT NULL,
    kind text NOT NULL,
    target_type text NOT NULL,
    target_id uuid NOT NULL,
    id uuid NOT NULL,
    package_id uuid NOT NULL,
    doc jsonb NOT NULL,
    PRIMARY KEY (tenant_id, kind, target_type, target_id)
);
CREATE INDEX ota_assignments_package ON ota_assignments (tenant_id, package_id);

CREATE TABLE ota_updates (
    seq bigserial NOT NULL,
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    device_id uuid NOT NULL,
    kind text NOT NULL,
    package_id uuid NOT NULL,
    target_title text NOT NULL,
    target_version text NOT NULL,
    campaign_id uuid,
    wave integer NOT NULL,
    state text NOT NULL,
    attempt integer NOT NULL,
    progress smallint,
    error text,
    created_at bigint NOT NULL,
    state_changed_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    retry_at bigint,
    wake_at bigint,
    revision bigint NOT NULL,
    lease_owner text,
    lease_until bigint
);
-- At most one unfinished update per device and kind.
CREATE UNIQUE INDEX ota_updates_one_unfinished ON ota_updates (device_id, kind)
    WHERE state NOT IN ('UPDATED', 'FAILED', 'CANCELED');
CREATE INDEX ota_updates_latest ON ota_updates (device_id, kind, seq);
CREATE INDEX ota_updates_tenant ON ota_updates (tenant_id, id);
CREATE INDEX ota_updates_queue_direct ON ota_updates (state_changed_at, id)
    WHERE state = 'QUEUED' AND campaign_id IS NULL;
CREATE INDEX ota_updates_queue_campaign ON ota_updates (campaign_id, wave, state_changed_at, id)
    WHERE state = 'QUEUED' AND campaign_id IS NOT NULL;
CREATE INDEX ota_updates_due ON ota_updates (wake_at, id) WHERE wake_at IS NOT NULL;
-- A campaign's updates in id order (listing, stopping a campaign a page at a time).
CREATE INDEX ota_updates_campaign ON ota_updates (campaign_id, id) WHERE campaign_id IS NOT NULL;
CREATE INDEX ota_updates_active ON ota_updates (state, tenant_id)
    WHERE state NOT IN ('QUEUED', 'UPDATED', 'FAILED', 'CANCELED');

CREATE TABLE ota_history (
    seq bigserial PRIMARY KEY,
    update_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    device_id uuid NOT NULL,
    doc jsonb NOT NULL
);
CREATE INDEX ota_history_update ON ota_history (update_id, seq);
CREATE INDEX ota_history_device ON ota_history (device_id, seq);

CREATE TABLE ota_audit (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    doc jsonb NOT NULL
);
CREATE INDEX ota_audit_tenant ON ota_audit (tenant_id, id);

CREATE TABLE ota_paces (
    key text PRIMARY KEY,
    version bigint NOT NULL,
    doc jsonb NOT NULL
);

CREATE TABLE ota_campaigns (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    state text NOT NULL,
    revision bigint NOT NULL,
    doc jsonb NOT NULL
);
CREATE INDEX ota_campaigns_tenant ON ota_campaigns (tenant_id, id);
CREATE INDEX ota_campaigns_active ON ota_campaigns (id)
    WHERE state IN ('SCHEDULED', 'RUNNING', 'PAUSED');

CREATE TABLE ota_campaign_devices (
    campaign_id uuid NOT NULL REFERENCES ota_campaigns (id) ON DELETE CASCADE,
    device_id uuid NOT NULL,
    PRIMARY KEY (campaign_id, device_id)
);

-- Update counts per (campaign, wave, state), changed in the same statement as the updates.
CREATE TABLE ota_campaign_counts (
    campaign_id uuid NOT NULL,
    wave integer NOT NULL,
    state text NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (campaign_id, wave, state)
);

CREATE TABLE ota_schedules (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    next_run bigint,
    revision bigint NOT NULL,
    doc jsonb NOT NULL
);
CREATE INDEX ota_schedules_tenant ON ota_schedules (tenant_id, id);
CREATE INDEX ota_schedules_due ON ota_schedules (next_run, id) WHERE next_run IS NOT NULL;
