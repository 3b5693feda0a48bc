-- What the account popup shows of a shared account besides its path: an optional code set
-- by the administrator (users search by it; unique, so that a code names one account), and
-- whether the users who may charge it see its balance (not unless the administrator says).
ALTER TABLE accounts
    ADD COLUMN code text CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$'),
    ADD COLUMN balance_visible boolean NOT NULL DEFAULT false;

CREATE UNIQUE INDEX accounts_code ON accounts (lower(code)) WHERE code IS NOT NULL;
