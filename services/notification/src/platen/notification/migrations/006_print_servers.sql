-- The print servers that have a broker identity of their own. The broker holds the
-- identities (and only a hash of their passwords); this is what they are reconciled
-- against at start-up and what `platenctl printserver list` shows.
CREATE TABLE print_servers (
    name text PRIMARY KEY,
    username text NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now()
);
