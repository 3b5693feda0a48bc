-- A removed print server stays until the broker has withdrawn its identity (after the
-- commit that removed it, retried until done, and again at start-up), so a removal is
-- never lost between the database and the broker.
ALTER TABLE print_servers ADD COLUMN removed_at timestamptz;
