-- When the row was written, by the database's clock. `created_at` is the emitting
-- service's (the message's occurred_at, which travels with it); the relay's timed sweep
-- and the backlog's age compare a row's age with the database's now(), so a service whose
-- clock is off would have its rows swept while its fast lane holds them (behind) or left
-- for as long as it is ahead. The INSERT's own time (clock_timestamp), not its
-- transaction's start (now()): a delivery that waited on a lock before it emitted does
-- not commit rows that already look settled to another replica's sweep. Rows already
-- there take the time of this migration.
ALTER TABLE outbox ADD COLUMN written_at timestamptz NOT NULL DEFAULT clock_timestamp();
