-- Webhook delivery: the claim (the `next_attempt_at` it set) of the round whose failure `last_error`
-- holds. A round whose statement recording its failure was retried after a lost answer finds its own
-- write by this, not by the error's text, which another dispatcher's round on a later claim may have
-- written as well. NULL until a round fails, and again once the event is delivered. Nullable without a
-- default: PostgreSQL adds the column without rewriting the table.
ALTER TABLE notifications ADD COLUMN failed_claim timestamptz;
