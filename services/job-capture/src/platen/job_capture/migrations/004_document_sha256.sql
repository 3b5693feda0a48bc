-- The SHA-256 of the document job-capture analysed (hex), so that anyone can check that
-- the bytes a printer was sent are the bytes that were analysed and charged.
ALTER TABLE jobs ADD COLUMN document_sha256 text;
