CREATE TABLE jobs (
    job_id uuid PRIMARY KEY,
    user_login text NOT NULL,
    printer text NOT NULL,
    document_name text NOT NULL,
    size_bytes integer NOT NULL,
    pages integer,
    copies integer NOT NULL,
    cost numeric(14, 2),
    state text NOT NULL CHECK (state IN
        ('captured', 'priced', 'released', 'printed', 'denied', 'failed', 'cancelled')),
    reason text,
    submitted_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_user ON jobs (user_login, submitted_at DESC);

-- The document waits here until the job is released or cancelled.
CREATE TABLE spool (
    job_id uuid PRIMARY KEY REFERENCES jobs (job_id),
    document bytea NOT NULL
);
