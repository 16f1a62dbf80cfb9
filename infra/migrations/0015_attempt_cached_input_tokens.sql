-- The input tokens an agent read from its provider's prompt cache (a part of `input_tokens`), which
-- providers bill at a lower rate: kept, so costs can be checked against them. NULL where the agent
-- said nothing, as for the other counts.
ALTER TABLE attempts ADD COLUMN cached_input_tokens bigint;
