-- Users from the site's directory (directory.py): what it says of them, and whether it
-- ever listed them (a sync disables only such users when the directory drops them).
ALTER TABLE users
    ADD COLUMN full_name text,
    ADD COLUMN email text,
    ADD COLUMN card_id text,
    ADD COLUMN from_directory boolean NOT NULL DEFAULT false;

-- What a user the directory knows gets when Platen first meets them: the first rule by
-- position that matches one of their groups, or anyone ('*').
CREATE TABLE new_user_rules (
    match text PRIMARY KEY,
    position integer NOT NULL CHECK (position >= 0),
    initial_balance numeric(14, 2) NOT NULL DEFAULT 0 CHECK (initial_balance >= 0),
    restricted boolean NOT NULL DEFAULT true,
    overdraft_limit numeric(14, 2) NOT NULL DEFAULT 0 CHECK (overdraft_limit >= 0)
);
