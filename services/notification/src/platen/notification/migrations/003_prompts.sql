-- The prompts sent to desktops, so that a user's answer can be checked against what was
-- asked (whose job, still open) and the popup closed when the job moves on.
CREATE TABLE prompts (
    job_id uuid PRIMARY KEY,
    user_login text NOT NULL,
    document_name text NOT NULL,
    expires_at timestamptz NOT NULL,
    state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX prompts_open ON prompts (user_login) WHERE state = 'open';

-- Each answer forwarded to the ledger, by the id of the command, so the ledger's reply
-- (correlated by that id) goes back to the right desktop, once.
CREATE TABLE answers (
    command_id text PRIMARY KEY,
    job_id uuid NOT NULL,
    user_login text NOT NULL,
    action text NOT NULL,
    answered_at timestamptz NOT NULL DEFAULT now(),
    outcome text
);
