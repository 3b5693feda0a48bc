-- How to reach each user by email, as the ledger announced it (user.contact_set); a
-- message with a lower revision than the one kept is older news and changes nothing.
CREATE TABLE contacts (
    login text PRIMARY KEY,
    email text,
    email_notices boolean NOT NULL DEFAULT false,
    revision bigint NOT NULL
);

-- The wording an administrator gave a notice; a notice with no row uses the built-in one.
CREATE TABLE notice_templates (
    name text PRIMARY KEY,
    subject text NOT NULL,
    body text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);

-- Mail waiting to go, written in the transaction that handled the event it tells of
-- (`source` is that event's message id and the notice's name: one mail per event, however
-- often it is delivered). The sender claims due rows with FOR UPDATE SKIP LOCKED and
-- moves `next_attempt_at` past the time one attempt can take, so replicas never send
-- the same row at once and a replica that dies mid-send leaves it to another.
CREATE TABLE mail_outbox (
    id bigserial PRIMARY KEY,
    source text NOT NULL UNIQUE,
    login text NOT NULL,
    recipient text NOT NULL,
    subject text NOT NULL,
    body text NOT NULL,
    job_id uuid,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'refused')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    done_at timestamptz
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE state = 'pending';
