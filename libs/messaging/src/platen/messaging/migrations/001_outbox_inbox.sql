-- Transactional outbox: rows written in the same transaction as the state change,
-- published by the relay with confirms, then deleted.
CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    message_id text NOT NULL UNIQUE,
    exchange text NOT NULL,
    routing_key text NOT NULL,
    message_type text NOT NULL,
    schema_version integer NOT NULL,
    correlation_id text,
    body bytea NOT NULL,
    expiration_ms integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- A row the broker keeps refusing is retried, then left here for an administrator
    -- (after MAX_ATTEMPTS) instead of blocking every row behind it.
    attempts integer NOT NULL DEFAULT 0,
    last_error text
);

-- Inbox: one row per message applied, written in the effect's transaction, so a
-- redelivered message is recognised and skipped. A request's reply is kept so that a
-- retried request gets the same answer.
CREATE TABLE inbox (
    consumer text NOT NULL,
    message_id text NOT NULL,
    reply_type text,
    reply_version integer,
    reply_body bytea,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
CREATE INDEX inbox_processed_at ON inbox (processed_at);
