-- The marks (log fields that follow a job, see platen.messaging.marks) a message carries
-- in its `platen-marks` header, as the JSON text of that header.
ALTER TABLE outbox ADD COLUMN marks text;
