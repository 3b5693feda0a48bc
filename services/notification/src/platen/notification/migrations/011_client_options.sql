-- Client options set by the administrator: the site's (scope '') and each group's (scope =
-- the group's name; a group name is never empty). Values are in their normal form
-- (platen.events.client_options), checked before they are stored.
CREATE TABLE client_options (
    scope text NOT NULL,
    key text NOT NULL,
    value text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- Each user's groups, as the ledger announced them last (user.groups_set): what their
-- desktop's options are merged from. `announced_at` is the event's time, so an older
-- announcement delivered after a newer one changes nothing.
CREATE TABLE client_user_groups (
    login text PRIMARY KEY,
    groups text[] NOT NULL,
    announced_at timestamptz NOT NULL
);

-- Numbers the options notices desktops are sent, in the order they are composed (under
-- one lock: Store.lock_client_options), so a desktop keeps the newest whatever the order
-- they arrive in.
CREATE SEQUENCE client_options_revision;
