-- The metrics count failed tasks by their class on every scrape (cached for 5 s): over this index
-- alone, not the rows of every failed task. Built with a write lock on `tasks` (seconds per million
-- tasks): on a large table, create it beforehand with CREATE INDEX CONCURRENTLY (docs/operations.md).
CREATE INDEX tasks_failed_by_class ON tasks (error_class) WHERE status = 'failed';
