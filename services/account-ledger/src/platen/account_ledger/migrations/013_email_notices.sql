-- Whether a user wants their low-balance and denial notices by email too (their own
-- choice, off until set), and a counter of changes to how they are reached: each
-- user.contact_set carries it, so the notification service keeps the latest of two that
-- arrive out of order.
ALTER TABLE users
    ADD COLUMN email_notices boolean NOT NULL DEFAULT false,
    ADD COLUMN contact_revision bigint NOT NULL DEFAULT 0;
