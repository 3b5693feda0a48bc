-- Which change of the user's groups the copy holds: the ledger counts them and says so in
-- `user.groups_set` version 2. The event's timestamp could not order two announcements of
-- one second (AMQP carries it in whole seconds) nor of two replicas' clocks. Rows kept
-- before this migration count as the oldest (0).
ALTER TABLE client_user_groups ADD COLUMN revision bigint NOT NULL DEFAULT 0;
ALTER TABLE client_user_groups DROP COLUMN announced_at;
