-- What was sent to which desktop, for support ("did the user see it?").
CREATE TABLE deliveries (
    id bigserial PRIMARY KEY,
    user_login text NOT NULL,
    kind text NOT NULL,
    job_id uuid,
    sent_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_user ON deliveries (user_login, sent_at DESC);
