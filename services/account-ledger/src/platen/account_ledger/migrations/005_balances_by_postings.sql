-- A balance is the sum of its account's entries, so it changes only by posting one: the
-- entries trigger (apply_entry) is the one writer of accounts.balance. A direct UPDATE of a
-- balance, by any role, is refused; so is an account created with money already in it.
-- `pg_trigger_depth()` is 1 in this trigger for a statement a client sent, and more when
-- the update comes from apply_entry; no role of a service may create a trigger of its own
-- (it owns no table), so it cannot reach this one from a trigger that is not apply_entry.
-- Refuses the statement with `message` (check_violation, as the other ledger rules do).
CREATE FUNCTION refuse(message text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', message USING ERRCODE = 'check_violation';
END $$;

CREATE FUNCTION guard_balance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.balance <> 0 THEN
            PERFORM refuse(format('account %s must start at 0: money enters by a posting',
                                  NEW.id));
        END IF;
    ELSIF NEW.balance IS DISTINCT FROM OLD.balance AND pg_trigger_depth() < 2 THEN
        PERFORM refuse(format('the balance of account %s changes only by posting an entry',
                              OLD.id));
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER accounts_balance_by_postings BEFORE INSERT OR UPDATE OF balance ON accounts
    FOR EACH ROW EXECUTE FUNCTION guard_balance();
