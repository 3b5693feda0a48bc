-- Where a job came from decides who prints it on release: job-capture itself ("api"), or
-- the Platen CUPS backend holding it ("cups"), which then reports the printer's outcome.
ALTER TABLE jobs ADD COLUMN source text NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'cups'));
ALTER TABLE jobs ADD COLUMN cups_job_id integer;
ALTER TABLE jobs ADD COLUMN origin_host text;
-- A job nobody decides on by then is cancelled.
ALTER TABLE jobs ADD COLUMN deadline_at timestamptz;
CREATE INDEX jobs_waiting ON jobs (deadline_at) WHERE state IN ('captured', 'priced');

-- The analysis, as published in job.captured version 2.
ALTER TABLE jobs ADD COLUMN format text;
ALTER TABLE jobs ADD COLUMN color_pages integer[];
ALTER TABLE jobs ADD COLUMN paper_sizes jsonb;
ALTER TABLE jobs ADD COLUMN duplex boolean NOT NULL DEFAULT false;
ALTER TABLE jobs ADD COLUMN number_up integer NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN color_mode text NOT NULL DEFAULT 'color';
ALTER TABLE jobs ADD COLUMN sides integer;
ALTER TABLE jobs ADD COLUMN sheets integer;
ALTER TABLE jobs ADD COLUMN side_groups jsonb;
ALTER TABLE jobs ADD COLUMN analysis_ms integer;
