-- Which change of the user's groups the copy holds (the ledger counts them; see
-- `user.groups_set` version 2). Two announcements about one user can be delivered out of
-- order (deliveries of a queue run concurrently), so the copy keeps the later change, not
-- the later delivery. Rows copied before this migration count as the oldest (0).
ALTER TABLE user_groups ADD COLUMN revision bigint NOT NULL DEFAULT 0;
