-- What the reports group a job's charge by, kept with its hold when the hold is made (the
-- events the ledger receives carry them): the colour and grayscale sides of one copy, and
-- the groups its user was in at that moment (a report by group counts a job in the groups
-- of the time, not of today). Holds made before this migration have NULL here: reports
-- count their sides without a colour split, and their user's groups as they are now.
ALTER TABLE holds
    ADD COLUMN color_sides integer CHECK (color_sides >= 0),
    ADD COLUMN grayscale_sides integer CHECK (grayscale_sides >= 0),
    ADD COLUMN user_groups text[];
-- A job asked about is held from its question, so the question keeps them until then.
ALTER TABLE pending_inputs
    ADD COLUMN color_sides integer CHECK (color_sides >= 0),
    ADD COLUMN grayscale_sides integer CHECK (grayscale_sides >= 0);

-- guard_hold (006) freezes what a hold holds by listing its columns; these are frozen too.
CREATE FUNCTION guard_hold_facts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.color_sides, NEW.grayscale_sides, NEW.user_groups, NEW.printer, NEW.pages,
        NEW.copies, NEW.document_name, NEW.comment)
       IS DISTINCT FROM
       (OLD.color_sides, OLD.grayscale_sides, OLD.user_groups, OLD.printer, OLD.pages,
        OLD.copies, OLD.document_name, OLD.comment)
    THEN
        PERFORM refuse(format('hold for job %s: what it records never changes', OLD.job_id));
    END IF;
    RETURN NEW;
END $$;
-- Pinned like every ledger function (007).
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION guard_hold_facts() SET search_path = pg_catalog, %I, pg_temp',
                   current_schema());
END $$;
CREATE TRIGGER holds_facts_frozen BEFORE UPDATE ON holds
    FOR EACH ROW EXECUTE FUNCTION guard_hold_facts();

-- Reports read charged jobs by when they were charged, and refunds by when they were made.
CREATE INDEX holds_posted_at ON holds (resolved_at) WHERE state = 'posted';
CREATE INDEX transactions_refunds_at ON transactions (created_at) WHERE kind = 'refund';

-- A deleted user prints and signs in no more, and is listed no more; the row stays, so
-- their transactions, holds and reports keep their name (`platenctl user delete`).
ALTER TABLE users ADD COLUMN deleted_at timestamptz;
