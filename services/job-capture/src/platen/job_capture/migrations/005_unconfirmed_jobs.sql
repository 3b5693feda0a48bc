-- A released job whose fate is unknown at the release timeout is "unconfirmed" (charged).
ALTER TABLE jobs DROP CONSTRAINT jobs_state_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check CHECK (state IN
    ('captured', 'priced', 'released', 'printed', 'denied', 'failed', 'cancelled',
     'unconfirmed'));
-- When the CUPS backend last said the printer was still being sent the job (heartbeat).
ALTER TABLE jobs ADD COLUMN alive_at timestamptz;
CREATE INDEX jobs_released ON jobs (updated_at) WHERE state = 'released';
CREATE INDEX jobs_by_state ON jobs (state, submitted_at DESC);

-- A CUPS cancel that reached job-capture before the job's submission did (the submission
-- was still being analysed): the submission, when it comes, is dropped.
CREATE TABLE cancelled_before_capture (
    job_id uuid PRIMARY KEY,
    reason text NOT NULL,
    cancelled_at timestamptz NOT NULL DEFAULT now()
);
