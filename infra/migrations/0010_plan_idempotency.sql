-- A plan submitted with an idempotency key is stored once: submitting the same key again answers the
-- plan stored first (and starts its workflow if the first submission stored it but did not start it).
ALTER TABLE plans ADD COLUMN idempotency_key text UNIQUE;
