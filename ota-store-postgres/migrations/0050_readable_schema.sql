-- An operator-readable schema: times become timestamptz (they were bigint nanoseconds since
-- the Unix epoch), state and kind columns accept only their names (CHECK), and every table
-- and column says what it holds (COMMENT ON). Rows are kept: each time is converted to the
-- microsecond it falls in (towards the past; the store writes whole microseconds from now on).
-- The tables whose columns change are rewritten once (one ALTER TABLE each).

-- bigint nanoseconds since the Unix epoch -> timestamptz, exactly (no float arithmetic):
-- floor to microseconds, then whole seconds through to_timestamp (exact for integers of
-- this size) plus the remaining microseconds.
CREATE FUNCTION ota_0050_ns_to_timestamptz(ns bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT to_timestamp(s) + r * interval '1 microsecond'
    FROM (SELECT us / 1000000 - CASE WHEN us % 1000000 < 0 THEN 1 ELSE 0 END AS s,
                 us % 1000000 + CASE WHEN us % 1000000 < 0 THEN 1000000 ELSE 0 END AS r
          FROM (SELECT ns / 1000 - CASE WHEN ns % 1000 < 0 THEN 1 ELSE 0 END AS us) a) b
$$;

ALTER TABLE ota_profiles
    ALTER COLUMN created_at TYPE timestamptz USING ota_0050_ns_to_timestamptz(created_at);
ALTER TABLE ota_groups
    ALTER COLUMN created_at TYPE timestamptz USING ota_0050_ns_to_timestamptz(created_at);
ALTER TABLE ota_devices
    ALTER COLUMN created_at TYPE timestamptz USING ota_0050_ns_to_timestamptz(created_at);
ALTER TABLE ota_updates
    ALTER COLUMN created_at TYPE timestamptz USING ota_0050_ns_to_timestamptz(created_at),
    ALTER COLUMN state_changed_at TYPE timestamptz
        USING ota_0050_ns_to_timestamptz(state_changed_at),
    ALTER COLUMN updated_at TYPE timestamptz USING ota_0050_ns_to_timestamptz(updated_at),
    ALTER COLUMN retry_at TYPE timestamptz USING ota_0050_ns_to_timestamptz(retry_at),
    ALTER COLUMN wake_at TYPE timestamptz USING ota_0050_ns_to_timestamptz(wake_at),
    ALTER COLUMN lease_until TYPE timestamptz USING ota_0050_ns_to_timestamptz(lease_until),
    ADD CONSTRAINT ota_updates_kind CHECK (kind IN ('FIRMWARE', 'SOFTWARE')),
    ADD CONSTRAINT ota_updates_state CHECK (state IN ('QUEUED', 'INITIATED', 'DOWNLOADING',
        'DOWNLOADED', 'VERIFIED', 'UPDATING', 'UPDATED', 'FAILED', 'CANCELED'));
ALTER TABLE ota_schedules
    ALTER COLUMN next_run TYPE timestamptz USING ota_0050_ns_to_timestamptz(next_run);
ALTER TABLE ota_outbox
    ALTER COLUMN created_at TYPE timestamptz USING ota_0050_ns_to_timestamptz(created_at),
    ALTER COLUMN lease_until TYPE timestamptz USING ota_0050_ns_to_timestamptz(lease_until),
    ADD CONSTRAINT ota_outbox_kind CHECK (kind IN ('FIRMWARE', 'SOFTWARE'));
ALTER TABLE ota_api_keys
    ALTER COLUMN created_at TYPE timestamptz USING ota_0050_ns_to_timestamptz(created_at),
    ALTER COLUMN revoked_at TYPE timestamptz USING ota_0050_ns_to_timestamptz(revoked_at);

DROP FUNCTION ota_0050_ns_to_timestamptz(bigint);

ALTER TABLE ota_packages
    ADD CONSTRAINT ota_packages_kind CHECK (kind IN ('FIRMWARE', 'SOFTWARE'));
ALTER TABLE ota_assignments
    ADD CONSTRAINT ota_assignments_kind CHECK (kind IN ('FIRMWARE', 'SOFTWARE')),
    ADD CONSTRAINT ota_assignments_target_type
        CHECK (target_type IN ('device', 'group', 'profile'));
ALTER TABLE ota_campaigns
    ADD CONSTRAINT ota_campaigns_state CHECK (state IN ('DRAFT', 'SCHEDULED', 'RUNNING',
        'PAUSED', 'FINISHED', 'STOPPED', 'FAILED', 'ARCHIVED'));
ALTER TABLE ota_campaign_counts
    ADD CONSTRAINT ota_campaign_counts_state CHECK (state IN ('QUEUED', 'INITIATED',
        'DOWNLOADING', 'DOWNLOADED', 'VERIFIED', 'UPDATING', 'UPDATED', 'FAILED', 'CANCELED'));

-- What every table and column holds. Times are timestamptz (whole microseconds); ids are
-- UUIDs (version 7 where rows are made by the store: they sort by creation time); `doc`
-- columns hold the whole record as JSON (the serde form of the ota-core type, times as
-- RFC 3339 text) next to the columns that queries need.

COMMENT ON TABLE ota_schema_migrations IS
    'The migrations applied to this schema (the store applies missing ones at start).';
COMMENT ON COLUMN ota_schema_migrations.version IS 'Migration number (file NNNN_name.sql).';
COMMENT ON COLUMN ota_schema_migrations.name IS 'Migration name.';
COMMENT ON COLUMN ota_schema_migrations.applied_at IS 'When it was applied.';

COMMENT ON FUNCTION ota_uuid_v7() IS
    'A new time-ordered UUID (version 7), for rows the database creates set-wise.';
COMMENT ON FUNCTION ota_outbox_announce() IS
    'Trigger: announces new outbox notices on channel ota_outbox:<schema> (device ids, comma-separated).';

COMMENT ON TABLE ota_packages IS
    'Firmware and software packages (images): metadata here, content in ota_package_chunks.';
COMMENT ON COLUMN ota_packages.id IS 'Package id.';
COMMENT ON COLUMN ota_packages.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN ota_packages.kind IS 'FIRMWARE or SOFTWARE.';
COMMENT ON COLUMN ota_packages.title IS 'Title (with version: what a device reports as current).';
COMMENT ON COLUMN ota_packages.version IS 'Version text.';
COMMENT ON COLUMN ota_packages.chunk_size IS
    'Bytes per row of ota_package_chunks (the last may be shorter); NULL for an external URL.';
COMMENT ON COLUMN ota_packages.doc IS
    'The whole package record (JSON): size, checksum, compatibility, source, created_at.';
COMMENT ON COLUMN ota_packages.upload_until IS
    'Set while the upload is in progress (its lease; the row is invisible until NULL).';

COMMENT ON TABLE ota_package_chunks IS 'Package content, in chunks of the package''s chunk_size.';
COMMENT ON COLUMN ota_package_chunks.package_id IS 'The package (ota_packages.id).';
COMMENT ON COLUMN ota_package_chunks.seq IS 'Chunk number, from 0.';
COMMENT ON COLUMN ota_package_chunks.data IS 'The bytes (stored uncompressed).';

COMMENT ON TABLE ota_profiles IS 'Device profiles: every device has one.';
COMMENT ON COLUMN ota_profiles.id IS 'Profile id.';
COMMENT ON COLUMN ota_profiles.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN ota_profiles.name IS 'Name, unique per tenant.';
COMMENT ON COLUMN ota_profiles.created_at IS 'When it was created.';

COMMENT ON TABLE ota_groups IS 'Device groups: a device belongs to any number (ota_device_groups).';
COMMENT ON COLUMN ota_groups.id IS 'Group id.';
COMMENT ON COLUMN ota_groups.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN ota_groups.name IS 'Name, unique per tenant.';
COMMENT ON COLUMN ota_groups.created_at IS 'When it was created.';

COMMENT ON TABLE ota_devices IS 'Devices, with the versions they last reported as current.';
COMMENT ON COLUMN ota_devices.id IS 'Device id.';
COMMENT ON COLUMN ota_devices.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN ota_devices.name IS 'Name, unique per tenant.';
COMMENT ON COLUMN ota_devices.profile_id IS 'Its profile (ota_profiles.id).';
COMMENT ON COLUMN ota_devices.token_digest IS
    'SHA-256 (lowercase hex) of the device''s access token; the token itself is not stored.';
COMMENT ON COLUMN ota_devices.fw_title IS 'Current firmware title, as last reported (NULL: none).';
COMMENT ON COLUMN ota_devices.fw_version IS 'Current firmware version, as last reported.';
COMMENT ON COLUMN ota_devices.sw_title IS 'Current software title, as last reported (NULL: none).';
COMMENT ON COLUMN ota_devices.sw_version IS 'Current software version, as last reported.';
COMMENT ON COLUMN ota_devices.created_at IS 'When it was created.';

COMMENT ON TABLE ota_device_groups IS 'Group memberships: one row per device and group.';
COMMENT ON COLUMN ota_device_groups.device_id IS 'The device (ota_devices.id).';
COMMENT ON COLUMN ota_device_groups.group_id IS 'The group (ota_groups.id).';

COMMENT ON TABLE ota_assignments IS
    'The package assigned to a device, group or profile, per kind (device beats group beats profile).';
COMMENT ON COLUMN ota_assignments.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN ota_assignments.kind IS 'FIRMWARE or SOFTWARE.';
COMMENT ON COLUMN ota_assignments.target_type IS 'device, group or profile.';
COMMENT ON COLUMN ota_assignments.target_id IS 'The device, group or profile id.';
COMMENT ON COLUMN ota_assignments.id IS 'Assignment id.';
COMMENT ON COLUMN ota_assignments.package_id IS 'The assigned package (ota_packages.id).';
COMMENT ON COLUMN ota_assignments.doc IS 'The whole assignment record (JSON).';

COMMENT ON TABLE ota_updates IS
    'One row per update of one device to one package (an attempt history is in ota_history).';
COMMENT ON COLUMN ota_updates.seq IS 'Creation order (the latest update of a device has the highest).';
COMMENT ON COLUMN ota_updates.id IS 'Update id.';
COMMENT ON COLUMN ota_updates.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN ota_updates.device_id IS 'The device (ota_devices.id).';
COMMENT ON COLUMN ota_updates.kind IS 'FIRMWARE or SOFTWARE.';
COMMENT ON COLUMN ota_updates.package_id IS 'The package the device is updated to.';
COMMENT ON COLUMN ota_updates.target_title IS 'The package title the device must report when done.';
COMMENT ON COLUMN ota_updates.target_version IS 'The package version the device must report when done.';
COMMENT ON COLUMN ota_updates.campaign_id IS 'The campaign it belongs to (NULL: a direct assignment).';
COMMENT ON COLUMN ota_updates.wave IS 'The campaign wave, from 0 (0 without a campaign).';
COMMENT ON COLUMN ota_updates.state IS
    'QUEUED, INITIATED, DOWNLOADING, DOWNLOADED, VERIFIED, UPDATING; final: UPDATED, FAILED, CANCELED.';
COMMENT ON COLUMN ota_updates.attempt IS 'Attempt number, from 1 (a retry starts the next).';
COMMENT ON COLUMN ota_updates.progress IS 'Percent reported in DOWNLOADING or UPDATING.';
COMMENT ON COLUMN ota_updates.error IS 'Why it failed or was canceled.';
COMMENT ON COLUMN ota_updates.created_at IS 'When it was created.';
COMMENT ON COLUMN ota_updates.state_changed_at IS 'When the state last changed (timeouts count from here).';
COMMENT ON COLUMN ota_updates.updated_at IS 'When the row last changed.';
COMMENT ON COLUMN ota_updates.retry_at IS 'When an automatic retry of a FAILED attempt is due.';
COMMENT ON COLUMN ota_updates.wake_at IS
    'When the engine looks at it again (state timeout or retry); past and not final: overdue.';
COMMENT ON COLUMN ota_updates.revision IS 'Bumped by every change (compare-and-set token).';
COMMENT ON COLUMN ota_updates.lease_owner IS 'The instance that claimed it for release or a timeout.';
COMMENT ON COLUMN ota_updates.lease_until IS 'When that claim lapses (others may claim it then).';

COMMENT ON TABLE ota_history IS
    'Every event applied to an update, whatever its outcome, in append order (trimmed by retention).';
COMMENT ON COLUMN ota_history.seq IS 'Append order.';
COMMENT ON COLUMN ota_history.update_id IS 'The update (ota_updates.id).';
COMMENT ON COLUMN ota_history.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN ota_history.device_id IS 'The device.';
COMMENT ON COLUMN ota_history.doc IS
    'The entry (JSON): at, attempt, from, to, source, event, message, outcome (applied/ignored/rejected).';

COMMENT ON TABLE ota_audit IS 'Management actions: who did what to which entity, when (trimmed by retention).';
COMMENT ON COLUMN ota_audit.id IS 'Entry id (UUID v7: sorts by time).';
COMMENT ON COLUMN ota_audit.tenant_id IS 'The tenant acted on.';
COMMENT ON COLUMN ota_audit.doc IS 'The entry (JSON): actor, action, target, at, details.';

COMMENT ON TABLE ota_paces IS 'Pacing state of release rates and windows, one row per pacing key.';
COMMENT ON COLUMN ota_paces.key IS 'The pacing key: global (the engine''s pacing of all releases) or campaign:<id>.';
COMMENT ON COLUMN ota_paces.version IS 'Bumped by every change (compare-and-set token).';
COMMENT ON COLUMN ota_paces.doc IS 'The pacing state (JSON).';

COMMENT ON TABLE ota_campaigns IS 'Campaigns: a package rolled out to a set of devices in waves.';
COMMENT ON COLUMN ota_campaigns.id IS 'Campaign id.';
COMMENT ON COLUMN ota_campaigns.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN ota_campaigns.state IS
    'DRAFT, SCHEDULED, RUNNING, PAUSED; ended: FINISHED, STOPPED, FAILED; ARCHIVED.';
COMMENT ON COLUMN ota_campaigns.revision IS 'Bumped by every change (compare-and-set token).';
COMMENT ON COLUMN ota_campaigns.doc IS
    'The whole campaign (JSON): spec (name, package, target, waves, policy), state_reason, times.';

COMMENT ON TABLE ota_campaign_devices IS 'The explicit device list of a campaign (target "devices").';
COMMENT ON COLUMN ota_campaign_devices.campaign_id IS 'The campaign (ota_campaigns.id).';
COMMENT ON COLUMN ota_campaign_devices.device_id IS 'A listed device.';

COMMENT ON TABLE ota_campaign_counts IS
    'Update counts per campaign, wave and state, kept in the same statement as the updates.';
COMMENT ON COLUMN ota_campaign_counts.campaign_id IS 'The campaign (ota_campaigns.id).';
COMMENT ON COLUMN ota_campaign_counts.wave IS 'Wave, from 0.';
COMMENT ON COLUMN ota_campaign_counts.state IS 'Update state (as ota_updates.state).';
COMMENT ON COLUMN ota_campaign_counts.n IS 'Updates of that campaign and wave in that state.';

COMMENT ON TABLE ota_schedules IS 'Scheduled management actions (one-off or repeating).';
COMMENT ON COLUMN ota_schedules.id IS 'Schedule id.';
COMMENT ON COLUMN ota_schedules.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN ota_schedules.next_run IS 'When it runs next (NULL: never again).';
COMMENT ON COLUMN ota_schedules.revision IS 'Bumped by every change (compare-and-set token).';
COMMENT ON COLUMN ota_schedules.doc IS 'The whole schedule (JSON): action, repeat, last run and outcome.';

COMMENT ON TABLE ota_outbox IS
    'Notices (update or withdrawal) not yet delivered to their device; deleted once delivered.';
COMMENT ON COLUMN ota_outbox.id IS 'Notice id (UUID v7: the oldest is delivered first).';
COMMENT ON COLUMN ota_outbox.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN ota_outbox.device_id IS 'The device to tell.';
COMMENT ON COLUMN ota_outbox.kind IS 'FIRMWARE or SOFTWARE (a newer notice replaces older ones).';
COMMENT ON COLUMN ota_outbox.doc IS 'The notice (JSON).';
COMMENT ON COLUMN ota_outbox.created_at IS 'When it was written.';
COMMENT ON COLUMN ota_outbox.lease_owner IS 'The instance delivering it.';
COMMENT ON COLUMN ota_outbox.lease_until IS 'When that delivery''s claim lapses (it is retried then).';

COMMENT ON TABLE ota_api_keys IS 'Management API keys (only their SHA-256 is stored).';
COMMENT ON COLUMN ota_api_keys.id IS 'Key id.';
COMMENT ON COLUMN ota_api_keys.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN ota_api_keys.name IS 'Name, unique per tenant (kept after revocation).';
COMMENT ON COLUMN ota_api_keys.role IS 'The role the key acts with, as the management API names it (admin, operator, assigner, read_only).';
COMMENT ON COLUMN ota_api_keys.digest IS 'SHA-256 of the key (32 bytes).';
COMMENT ON COLUMN ota_api_keys.created_at IS 'When it was created.';
COMMENT ON COLUMN ota_api_keys.revoked_at IS 'When it was revoked (NULL: valid).';
