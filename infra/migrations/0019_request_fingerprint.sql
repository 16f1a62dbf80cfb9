-- The SHA-256 of the request that created a task or plan with an idempotency key (its fields, in a
-- canonical order), so that the key sent again with another request is refused instead of answered
-- with the first one. NULL for rows stored without a key, by a plan, or before this column: those
-- replay as before. Nullable without a default: PostgreSQL adds the columns without rewriting the tables.
ALTER TABLE tasks ADD COLUMN request_sha256 text;
ALTER TABLE plans ADD COLUMN request_sha256 text;
