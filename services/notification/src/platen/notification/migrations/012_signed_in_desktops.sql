-- The desktops users signed in from with their directory password (`platen-client
-- --sign-in`), each with a broker user of its own (`<login>~<desktop>`). The broker keeps
-- the credential (a salted hash); this records which desktops exist, so that they can be
-- listed, reconciled at start-up and revoked one by one. No password is kept here.
CREATE TABLE signed_in_desktops (
    login text NOT NULL,
    desktop text NOT NULL,
    signed_in_at timestamptz NOT NULL DEFAULT now(),
    -- The address the sign-in came from, for the administrator's list.
    source text,
    -- Revoked: the broker user is being deleted; the row goes once the broker has done it.
    revoked boolean NOT NULL DEFAULT false,
    PRIMARY KEY (login, desktop)
);
