-- The marks (log fields that follow a job, platen.messaging.marks) a prompted job carried,
-- as JSON: its answer comes from a desktop, which carries none, and is marked with these.
ALTER TABLE prompts ADD COLUMN marks text;
