-- Periodic quotas: an amount each member of a group is given every day, week, month or
-- term (domain.Quota). One quota per group.
CREATE TABLE quotas (
    group_name text PRIMARY KEY REFERENCES groups (name),
    amount numeric(14, 2) NOT NULL CHECK (amount > 0),
    period text NOT NULL CHECK (period IN ('day', 'week', 'month', 'term')),
    cap numeric(14, 2) CHECK (cap IS NULL OR cap >= amount),
    reset boolean NOT NULL DEFAULT false,
    terms date[] NOT NULL DEFAULT '{}',
    CHECK (NOT (reset AND cap IS NOT NULL)),
    CHECK ((period = 'term') = (cardinality(terms) > 0))
);

-- A group's period is given once: the run that inserts its row gives it, and a run at
-- the same time (another replica) waits on that row and then finds it taken. Kept for
-- ever (one row per group and period), as the journal of when each period was given.
CREATE TABLE quota_runs (
    group_name text NOT NULL,
    period text NOT NULL,
    users integer NOT NULL DEFAULT 0,
    total numeric(14, 2) NOT NULL DEFAULT 0,
    ran_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_name, period)
);

ALTER TABLE transactions DROP CONSTRAINT transactions_kind_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_kind_check
    CHECK (kind IN ('charge', 'top-up', 'adjustment', 'refund', 'transfer', 'quota'));
