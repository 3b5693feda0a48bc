-- The users whose desktops may sign in, as the ledger announced them. The broker holds
-- the identities themselves; this is what they are reconciled against at start-up.
CREATE TABLE desktop_users (
    login text PRIMARY KEY,
    enabled boolean NOT NULL DEFAULT true,
    changed_at timestamptz NOT NULL DEFAULT now()
);
