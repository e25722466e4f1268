-- The notice outbox: a notice is written in the same statement as the release it announces
-- (or on its own, for a withdrawal), delivered from here and deleted once delivered. A
-- notice whose delivery was cut short is claimed again once its lease lapses.
CREATE TABLE ota_outbox (
    id uuid PRIMARY KEY,               -- UUID v7: claims take the oldest first
    tenant_id uuid NOT NULL,
    device_id uuid NOT NULL,
    kind text NOT NULL,
    doc jsonb NOT NULL,                -- the notice
    created_at bigint NOT NULL,
    lease_owner text,
    lease_until bigint
);
-- The newest notice of a device and kind replaces older undelivered ones.
CREATE INDEX ota_outbox_device ON ota_outbox (device_id, kind);
CREATE INDEX ota_outbox_tenant ON ota_outbox (tenant_id);

-- Announces written notices on the channel 'ota_outbox:<schema>' (pg_notify, delivered to
-- listeners at commit): the payload is the ids of the notices' devices, comma-separated, at
-- most 100 per notification, so that the instance holding a device's connection can take
-- its notice at once.
CREATE FUNCTION ota_outbox_announce() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    devices text;
BEGIN
    FOR devices IN
        SELECT string_agg(device_id::text, ',')
        FROM (SELECT device_id, (row_number() OVER () - 1) / 100 AS chunk FROM written) w
        GROUP BY chunk
    LOOP
        PERFORM pg_notify('ota_outbox:' || TG_TABLE_SCHEMA, devices);
    END LOOP;
    RETURN NULL;
END
$$;
CREATE TRIGGER ota_outbox_announce AFTER INSERT ON ota_outbox
    REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION ota_outbox_announce();
