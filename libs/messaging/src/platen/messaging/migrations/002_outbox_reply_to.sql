-- A command sent through the outbox may name the queue its reply goes to (the sender's
-- own durable queue), so that a request survives the restart of either side.
ALTER TABLE outbox ADD COLUMN reply_to text;
