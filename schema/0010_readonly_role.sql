-- The gateway computes answers through a role that can only read: ALTDATA_READONLY_DATABASE_URL
-- names a login user in `altdata_reader`, so no bug in a query path can write, and the answer
-- connections hold nothing stronger than SELECT's locks. Admin writes (review, keys, cache
-- flush) keep DATABASE_URL.
--
-- `altdata_reader` is a NOLOGIN group role; each deployment creates its login user in it
-- (k8s/README.md: the dev overlay's init script, CloudNativePG's managed roles in prod).
-- Roles belong to the PostgreSQL cluster, not to one database: the role may exist already,
-- and another database may be creating it at this moment (the tests migrate many databases
-- at once), which is caught, not fatal. A migrating user that may not create roles gets an
-- error that says what to do, before anything else is granted.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'altdata_reader') THEN
        IF NOT (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
            RAISE EXCEPTION 'role altdata_reader does not exist and % may not create roles', current_user
                USING HINT = 'create it first: CREATE ROLE altdata_reader NOLOGIN (CloudNativePG: spec.managed.roles)';
        END IF;
        CREATE ROLE altdata_reader NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO altdata_reader;

-- Exactly the relations the gateway reads through its read-only pool (`state.inner.read_db`):
-- the answers (the released daily cells and the rollups), the disclosure rule's k (read with
-- readiness), the reference lists, freshness, `/v1/changes`, and the admin audit and mapped
-- share. A view is read with its owner's rights, so the view alone is granted. Not the identity record, API keys, ingest's ledgers or the outbox. A table that a
-- later read needs is granted by the migration that adds it; the gateway tests read through
-- this role (integration-tests `spawn_gateway`), so a missing grant fails them.
-- The daily table is partitioned: SELECT on the parent covers every partition read through it.
GRANT SELECT ON
    disclosure,
    released_daily_merchant_spend,
    dim_merchants,
    categories,
    agg_daily_merchant_spend,
    agg_weekly_merchant_spend,
    agg_monthly_merchant_spend,
    agg_daily_category_region,
    agg_weekly_category_region,
    agg_monthly_category_region,
    shard_offsets,
    aggregate_changes,
    mapping_audit,
    unmapped_transactions
TO altdata_reader;
