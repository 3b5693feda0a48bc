CREATE TABLE users (
    login text PRIMARY KEY,
    restricted boolean NOT NULL DEFAULT true,
    overdraft_limit numeric(14, 2) NOT NULL DEFAULT 0 CHECK (overdraft_limit >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- An account's balance is the sum of its entries; the entries trigger below keeps it so,
-- in the same statement, so the two can never disagree.
CREATE TABLE accounts (
    id text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('personal', 'shared', 'system')),
    owner_login text REFERENCES users (login),
    balance numeric(14, 2) NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO accounts (id, kind) VALUES ('system:revenue', 'system'), ('system:funding', 'system');

-- op_key is derived from what caused the transaction (e.g. job:<id>:charge), so a retry
-- can never post twice.
CREATE TABLE transactions (
    id bigserial PRIMARY KEY,
    op_key text NOT NULL UNIQUE,
    kind text NOT NULL,
    job_id uuid,
    description text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE entries (
    id bigserial PRIMARY KEY,
    transaction_id bigint NOT NULL REFERENCES transactions (id),
    account_id text NOT NULL REFERENCES accounts (id),
    amount numeric(14, 2) NOT NULL CHECK (amount <> 0)
);
CREATE INDEX entries_account ON entries (account_id, id);
CREATE INDEX entries_transaction ON entries (transaction_id);

-- Funds reserved for a job between authorisation and the printer's answer.
CREATE TABLE holds (
    job_id uuid PRIMARY KEY,
    account_id text NOT NULL REFERENCES accounts (id),
    user_login text NOT NULL,
    amount numeric(14, 2) NOT NULL CHECK (amount >= 0),
    state text NOT NULL CHECK (state IN ('pending', 'posted', 'voided')),
    printer text NOT NULL,
    document_name text NOT NULL,
    pages integer NOT NULL,
    copies integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);
CREATE INDEX holds_pending ON holds (account_id) WHERE state = 'pending';

CREATE FUNCTION apply_entry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts SET balance = balance + NEW.amount WHERE id = NEW.account_id;
    RETURN NEW;
END $$;
CREATE TRIGGER entries_apply AFTER INSERT ON entries
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
