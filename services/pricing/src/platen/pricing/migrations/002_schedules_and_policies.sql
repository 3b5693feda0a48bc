-- Price schedules: each change to a printer's cost model is a new version, in effect from
-- `effective_at`; a job is priced with the version in effect when it was captured.
CREATE TABLE schedules (
    printer text NOT NULL REFERENCES printers (name),
    version integer NOT NULL CHECK (version >= 1),
    model jsonb NOT NULL,
    effective_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (printer, version)
);
CREATE INDEX schedules_in_effect ON schedules (printer, effective_at DESC);

-- Every printer priced by the flat model so far keeps its price as version 1.
INSERT INTO schedules (printer, version, model, effective_at)
SELECT name, 1, jsonb_build_object('page', price_per_page::text), created_at FROM printers;

ALTER TABLE printers DROP COLUMN price_per_page;
-- The printer groups a printer is in; their policies apply to it.
ALTER TABLE printers ADD COLUMN groups text[] NOT NULL DEFAULT '{}';

-- The policy of one printer (scope 'printer') or one printer group (scope 'group').
CREATE TABLE policies (
    scope text NOT NULL CHECK (scope IN ('printer', 'group')),
    target text NOT NULL,
    policy jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, target)
);

-- A copy of each user's groups, from the ledger's user.groups_set events (the ledger owns
-- them): the colour policy decides by group.
CREATE TABLE user_groups (
    login text PRIMARY KEY,
    groups text[] NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
