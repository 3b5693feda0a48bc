-- The job log (`platenctl jobs`): the sides each job was priced for, in colour and in
-- grayscale (of one copy), and the account the ledger held or charged, with the amount and
-- the comment the user gave at the popup. Filled from job.priced and job.authorized.
ALTER TABLE jobs
    ADD COLUMN color_sides integer,
    ADD COLUMN grayscale_sides integer,
    ADD COLUMN charged_account text,
    ADD COLUMN charged_amount numeric(14, 2),
    ADD COLUMN comment text;
CREATE INDEX jobs_by_printer ON jobs (printer, submitted_at DESC);
CREATE INDEX jobs_by_account ON jobs (charged_account, submitted_at DESC)
    WHERE charged_account IS NOT NULL;
CREATE INDEX jobs_submitted ON jobs (submitted_at DESC);
