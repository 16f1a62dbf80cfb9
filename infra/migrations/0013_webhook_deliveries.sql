-- Webhook delivery per URL: the keys of the URLs that accepted the event (an HMAC of the URL, not the
-- URL, which may hold a token). A retry skips them, so one failing URL no longer makes the others
-- receive the event again on every retry. The row is delivered once every configured URL is in here.
-- A constant default: PostgreSQL adds the column without rewriting the table.
ALTER TABLE notifications ADD COLUMN delivered_to text[] NOT NULL DEFAULT '{}';
