-- Wrong PINs are counted per account as well as per user (several users guessing one
-- shared account's PIN together are stopped), and pruned by age: both look up by time.
CREATE INDEX pin_failures_account ON pin_failures (account_id, failed_at);
CREATE INDEX pin_failures_failed_at ON pin_failures (failed_at);
