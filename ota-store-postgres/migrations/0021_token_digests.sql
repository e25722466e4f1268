-- Access tokens are no longer stored: only their SHA-256 digest (lowercase hex of the UTF-8
-- bytes), by which devices are still found. Tokens stored before are converted in place.
ALTER TABLE ota_devices RENAME COLUMN access_token TO token_digest;
UPDATE ota_devices SET token_digest = encode(sha256(convert_to(token_digest, 'UTF8')), 'hex');
