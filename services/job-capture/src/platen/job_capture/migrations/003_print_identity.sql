-- How each queue proves whose its jobs are (see platen.events.print_identity). A queue
-- with no row here is `desktop`: no queue is ever `trusted` unless an admin said so.
CREATE TABLE printer_identity (
    printer text PRIMARY KEY,
    mode text NOT NULL CHECK (mode IN ('authenticated', 'desktop', 'trusted')),
    changed_at timestamptz NOT NULL DEFAULT now()
);

-- What was found out about the job's sender at capture, as published in job.captured v4.
ALTER TABLE jobs ADD COLUMN identity text
    CHECK (identity IN ('authenticated', 'present', 'unverified', 'trusted', 'api'));
