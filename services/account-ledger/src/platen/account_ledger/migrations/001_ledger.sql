-- How a user's jobs find the account that pays:
--   auto:    charged to default_account (their personal account unless set) with no popup;
--   confirm: the user confirms each job (and its cost) first;
--   choose:  the user picks the account: personal, a shared account from a list, or by PIN.
CREATE TABLE users (
    login text PRIMARY KEY,
    account_selection text NOT NULL DEFAULT 'auto'
        CHECK (account_selection IN ('auto', 'confirm', 'choose')),
    default_account text,
    low_balance_threshold numeric(14, 2) CHECK (low_balance_threshold >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE groups (name text PRIMARY KEY);
CREATE TABLE group_members (
    group_name text NOT NULL REFERENCES groups (name),
    login text NOT NULL REFERENCES users (login),
    PRIMARY KEY (group_name, login)
);

-- An account's balance is the sum of its entries; the entries trigger below keeps it so,
-- in the same statement, so the two can never disagree.
CREATE TABLE accounts (
    id text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('personal', 'shared', 'system')),
    name text NOT NULL,
    owner_login text REFERENCES users (login),
    parent_id text REFERENCES accounts (id),
    balance numeric(14, 2) NOT NULL DEFAULT 0,
    restricted boolean NOT NULL DEFAULT true,
    overdraft_limit numeric(14, 2) NOT NULL DEFAULT 0 CHECK (overdraft_limit >= 0),
    charge_rate numeric(8, 4) CHECK (charge_rate > 0),
    pin_hash text,
    enabled boolean NOT NULL DEFAULT true,
    low_balance_armed boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'personal') = (owner_login IS NOT NULL)),
    CHECK (kind = 'shared' OR parent_id IS NULL)
);
CREATE UNIQUE INDEX accounts_personal ON accounts (owner_login) WHERE kind = 'personal';
INSERT INTO accounts (id, kind, name, restricted) VALUES
    ('system:revenue', 'system', 'revenue', false),
    ('system:funding', 'system', 'funding', false);

-- Who may charge a shared account: users and groups, inherited by child accounts.
CREATE TABLE account_access (
    account_id text NOT NULL REFERENCES accounts (id),
    principal_kind text NOT NULL CHECK (principal_kind IN ('user', 'group')),
    principal text NOT NULL,
    PRIMARY KEY (account_id, principal_kind, principal)
);

-- op_key is derived from what caused the transaction (job:<id>:charge) or given by the
-- caller (topup:<key>), so a retry can never post twice.
CREATE TABLE transactions (
    id bigserial PRIMARY KEY,
    op_key text NOT NULL UNIQUE,
    kind text NOT NULL
        CHECK (kind IN ('charge', 'top-up', 'adjustment', 'refund', 'transfer')),
    job_id uuid,
    description text NOT NULL,
    created_by text NOT NULL DEFAULT 'system',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transactions_job ON transactions (job_id) WHERE job_id IS NOT NULL;

CREATE TABLE entries (
    id bigserial PRIMARY KEY,
    transaction_id bigint NOT NULL REFERENCES transactions (id),
    account_id text NOT NULL REFERENCES accounts (id),
    amount numeric(14, 2) NOT NULL CHECK (amount <> 0),
    balance_after numeric(14, 2) NOT NULL
);
CREATE INDEX entries_account ON entries (account_id, id);
CREATE INDEX entries_transaction ON entries (transaction_id);

-- Funds reserved for a job between authorisation and the printer's answer.
CREATE TABLE holds (
    job_id uuid PRIMARY KEY,
    account_id text NOT NULL REFERENCES accounts (id),
    user_login text NOT NULL,
    base_cost numeric(14, 2) NOT NULL CHECK (base_cost >= 0),
    charge_rate numeric(8, 4) NOT NULL,
    amount numeric(14, 2) NOT NULL CHECK (amount >= 0),
    state text NOT NULL CHECK (state IN ('pending', 'posted', 'voided')),
    printer text NOT NULL,
    document_name text NOT NULL,
    pages integer NOT NULL,
    copies integer NOT NULL,
    comment text,
    created_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);
CREATE INDEX holds_pending ON holds (account_id) WHERE state = 'pending';

-- Jobs waiting for their user to confirm or choose an account.
CREATE TABLE pending_inputs (
    job_id uuid PRIMARY KEY,
    user_login text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('confirm', 'choose_account')),
    printer text NOT NULL,
    document_name text NOT NULL,
    pages integer NOT NULL,
    copies integer NOT NULL,
    cost numeric(14, 2) NOT NULL,
    expires_at timestamptz NOT NULL,
    state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'answered', 'cancelled')),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Jobs that were cancelled or failed before the ledger held anything for them: a
-- price that arrives later must not hold funds (or ask the user) for a dead job.
CREATE TABLE closed_jobs (
    job_id uuid PRIMARY KEY,
    closed_at timestamptz NOT NULL DEFAULT now()
);

-- Wrong PINs, for lock-out after repeated failures.
CREATE TABLE pin_failures (
    id bigserial PRIMARY KEY,
    user_login text NOT NULL,
    account_id text,
    failed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pin_failures_user ON pin_failures (user_login, failed_at);

CREATE FUNCTION apply_entry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts SET balance = balance + NEW.amount WHERE id = NEW.account_id
        RETURNING balance INTO NEW.balance_after;
    RETURN NEW;
END $$;
CREATE TRIGGER entries_apply BEFORE INSERT ON entries
    FOR EACH ROW EXECUTE FUNCTION apply_entry();

-- Double entry, enforced by the database: at commit, every transaction's entries sum to
-- zero and there are at least two of them.
CREATE FUNCTION check_transaction_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total numeric;
    n integer;
BEGIN
    SELECT coalesce(sum(amount), 0), count(*) INTO total, n
      FROM entries WHERE transaction_id = NEW.id;
    IF total <> 0 OR n < 2 THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced (% entries summing to %)',
            NEW.id, n, total USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER transactions_balanced AFTER INSERT ON transactions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_transaction_balanced();

-- History is append-only: a correction is a new transaction.
CREATE FUNCTION forbid_history_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger history is append-only (% on %)', TG_OP, TG_TABLE_NAME;
END $$;
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION forbid_history_change();
CREATE TRIGGER transactions_append_only BEFORE UPDATE OR DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION forbid_history_change();
