-- Dispatchers delete finished notifications (delivered or given up) older than the retention hourly,
-- 1000 rows a statement: through this index each batch reads only its own rows, not the whole table
-- and the rows earlier batches left dead. Delivered rows leave the table within days, so it stays
-- small and is built in a moment.
CREATE INDEX notifications_finished ON notifications (created_at) WHERE next_attempt_at IS NULL;
