-- Assignments refer to their package: deleting an assigned package is refused by the
-- database itself, so that a delete and a concurrent assignment cannot both succeed.
-- NOT VALID: rows written before (by the race this closes) are kept as they are.
ALTER TABLE ota_assignments ADD CONSTRAINT ota_assignments_package
    FOREIGN KEY (package_id) REFERENCES ota_packages (id) ON DELETE RESTRICT NOT VALID;

-- Uploads in progress: a package row is written first with `upload_until` set (the upload's
-- lease, renewed as chunks arrive) and is invisible until the content is complete and
-- verified (`upload_until` NULL). A row whose lease lapsed was abandoned and is removed.
ALTER TABLE ota_packages ADD COLUMN upload_until timestamptz;
CREATE INDEX ota_packages_uploading ON ota_packages (upload_until) WHERE upload_until IS NOT NULL;
