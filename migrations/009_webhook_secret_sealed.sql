-- Webhook secrets are kept sealed (AES-256-GCM under <data dir>/webhook-key,
-- see src/metadata/secret-box.ts), no longer in clear. SQL cannot encrypt, so
-- this renames the column and existing clear values are sealed by the server
-- right after the migrations run (WebhookQueries.sealClearSecrets, with
-- secure_delete on so the clear bytes are overwritten in the file).
ALTER TABLE webhooks RENAME COLUMN secret TO secret_sealed;
