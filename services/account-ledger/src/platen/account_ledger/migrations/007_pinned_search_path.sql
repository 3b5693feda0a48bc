-- Every function of the ledger runs with a fixed search_path: the catalog, this schema,
-- and temporary objects last. Unpinned, a function resolves names through the caller's
-- search_path, where a temporary table (searched first unless named) or another schema
-- could stand in for `accounts` or `holds` and change what a trigger checks.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp',
                       f, current_schema());
    END LOOP;
END $$;
