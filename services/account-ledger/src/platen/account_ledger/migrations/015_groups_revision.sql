-- Each change of a user's groups is counted, and the count travels in `user.groups_set`
-- (version 2) so pricing and notification keep the latest announcement even when two
-- arrive out of order.
ALTER TABLE users ADD COLUMN groups_revision bigint NOT NULL DEFAULT 0;
