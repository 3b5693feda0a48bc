-- The print server that submitted a CUPS job, taken from the broker-checked `user_id` of
-- its submission (never from the message body): only that print server may ask about the
-- job or report its outcome. NULL for a job submitted through the API.
ALTER TABLE jobs ADD COLUMN print_server text;
