-- The lake's raw rows (external schema lake, Spectrum over raw/) hold PII: no analyst reads them.
-- Analysts read lake_protected.<entity>, late-binding views rendered from the contracts
-- (tenantlake.lake_access: no direct identifiers, quasi-identifiers coarsened, consumer ids
-- pseudonymised). A late-binding view runs with its owner's access to lake: the views are created
-- by the setup script's user (the loader's); beside it, only tenantlake_loader gets USAGE on lake.
CREATE SCHEMA IF NOT EXISTS lake_protected;
REVOKE USAGE ON SCHEMA lake FROM PUBLIC;
GRANT USAGE ON SCHEMA lake TO ROLE tenantlake_loader;
GRANT CREATE, USAGE ON SCHEMA lake_protected TO ROLE tenantlake_loader;
GRANT USAGE ON SCHEMA lake_protected TO ROLE agency_analyst, ROLE cross_agency_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA lake_protected TO ROLE agency_analyst, ROLE cross_agency_analyst;
-- An agency analyst sees its own tenant's rows, as in the marts (sql/security/row_level_security.sql).
ATTACH RLS POLICY tenant_isolation ON lake_protected.consumer, lake_protected.counselor,
    lake_protected.application, lake_protected.income, lake_protected.expense, lake_protected.debt,
    lake_protected.plan, lake_protected.payment TO ROLE agency_analyst;
ALTER TABLE lake_protected.consumer ROW LEVEL SECURITY ON;
ALTER TABLE lake_protected.counselor ROW LEVEL SECURITY ON;
ALTER TABLE lake_protected.application ROW LEVEL SECURITY ON;
ALTER TABLE lake_protected.income ROW LEVEL SECURITY ON;
ALTER TABLE lake_protected.expense ROW LEVEL SECURITY ON;
ALTER TABLE lake_protected.debt ROW LEVEL SECURITY ON;
ALTER TABLE lake_protected.plan ROW LEVEL SECURITY ON;
ALTER TABLE lake_protected.payment ROW LEVEL SECURITY ON;
