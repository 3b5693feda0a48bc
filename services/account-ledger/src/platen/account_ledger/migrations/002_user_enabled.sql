-- A disabled user prints nothing (their jobs are denied) and is signed out of their desktop.
ALTER TABLE users ADD COLUMN enabled boolean NOT NULL DEFAULT true;
