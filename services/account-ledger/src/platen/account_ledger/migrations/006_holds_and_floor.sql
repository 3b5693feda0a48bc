-- The hold state machine and a restricted account's floor, in the database as well as in
-- the domain (domain.Hold, domain.authorize), so that no statement of the service's role
-- can break them.

-- A hold is made pending, moves once to posted or voided, and never back. What it holds
-- (job, account, amounts) never changes. A posted hold with an amount has its charge (the
-- handler posts the charge, then the hold). A pending hold is voided, never deleted.
CREATE FUNCTION guard_hold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.state <> 'pending' THEN
            PERFORM refuse(format('hold for job %s must be made pending, not %s',
                                  NEW.job_id, NEW.state));
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' THEN
        IF OLD.state = 'pending' THEN
            PERFORM refuse(format('hold for job %s is pending: void it, do not delete it',
                                  OLD.job_id));
        END IF;
        RETURN OLD;
    END IF;
    IF (NEW.job_id, NEW.account_id, NEW.user_login, NEW.base_cost, NEW.charge_rate, NEW.amount)
       IS DISTINCT FROM
       (OLD.job_id, OLD.account_id, OLD.user_login, OLD.base_cost, OLD.charge_rate, OLD.amount)
    THEN
        PERFORM refuse(format('hold for job %s: what it holds never changes', OLD.job_id));
    END IF;
    IF OLD.state <> 'pending' THEN
        PERFORM refuse(format('hold for job %s is %s already, for good', OLD.job_id, OLD.state));
    END IF;
    IF NEW.state = 'posted' AND NEW.amount > 0 AND NOT EXISTS (
        SELECT 1 FROM transactions WHERE op_key = 'job:' || NEW.job_id || ':charge'
    ) THEN
        PERFORM refuse(format('hold for job %s cannot be posted without its charge', NEW.job_id));
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER holds_state_machine BEFORE INSERT OR UPDATE OR DELETE ON holds
    FOR EACH ROW EXECUTE FUNCTION guard_hold();

-- A restricted account never goes below minus its overdraft limit, counting the funds its
-- pending holds reserve (what domain.authorize checks): a new hold, or a debit, that would
-- take it there is refused. The charge that settles a pending hold of the same account
-- for the same amount passes: its money was checked when the hold was made. The account's
-- row is locked first, so two holds made at once are checked one after the other.
CREATE FUNCTION available_after(account text, change numeric, balance_now numeric)
    RETURNS numeric LANGUAGE sql AS $$
    SELECT balance_now + change - coalesce(
        (SELECT sum(amount) FROM holds WHERE account_id = account AND state = 'pending'), 0)
$$;

CREATE FUNCTION check_floor_of_hold() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    acc record;
BEGIN
    SELECT restricted, overdraft_limit, balance INTO acc
      FROM accounts WHERE id = NEW.account_id FOR UPDATE;
    IF acc.restricted AND available_after(NEW.account_id, -NEW.amount, acc.balance)
                          < -acc.overdraft_limit THEN
        PERFORM refuse(format('account %s cannot hold %s: below its floor of %s',
                              NEW.account_id, NEW.amount, -acc.overdraft_limit));
    END IF;
    RETURN NEW;
END $$;
-- After guard_hold (triggers fire in name order): a hold that is not pending is refused first.
CREATE TRIGGER holds_stay_above_floor BEFORE INSERT ON holds
    FOR EACH ROW EXECUTE FUNCTION check_floor_of_hold();

CREATE FUNCTION check_floor_of_entry() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    acc record;
BEGIN
    IF NEW.amount >= 0 THEN
        RETURN NEW;
    END IF;
    -- entries_apply (named before this trigger, so run before it) has locked the row and
    -- set balance_after.
    SELECT restricted, overdraft_limit INTO acc FROM accounts WHERE id = NEW.account_id;
    IF NOT acc.restricted THEN
        RETURN NEW;
    END IF;
    IF EXISTS (
        SELECT 1 FROM transactions t JOIN holds h ON t.op_key = 'job:' || h.job_id || ':charge'
         WHERE t.id = NEW.transaction_id AND h.account_id = NEW.account_id
           AND h.state = 'pending' AND h.amount = -NEW.amount
    ) THEN
        RETURN NEW;
    END IF;
    IF available_after(NEW.account_id, 0, NEW.balance_after) < -acc.overdraft_limit THEN
        PERFORM refuse(format('account %s cannot pay %s: below its floor of %s',
                              NEW.account_id, -NEW.amount, -acc.overdraft_limit));
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER entries_stay_above_floor BEFORE INSERT ON entries
    FOR EACH ROW EXECUTE FUNCTION check_floor_of_entry();
