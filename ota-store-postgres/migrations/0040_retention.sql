-- Retention (RetentionStore): a tenant's history is trimmed from its head in append order,
-- which needs the tenant's rows in seq order. The audit log has (tenant_id, id) already.
CREATE INDEX IF NOT EXISTS ota_history_tenant ON ota_history (tenant_id, seq);
