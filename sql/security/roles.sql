-- Who is who, created first: every other file in sql/security grants to these.
-- tenantlake_loader: the user warehouse_load connects as (loads, rebuilds, owns the protected views).
-- agency_analyst: one agency's analysts (RLS: their tenant only); map each in ops.analyst_tenant.
-- cross_agency_analyst: sees every agency (IGNORE RLS), and the cross-agency marts.
CREATE ROLE tenantlake_loader;
CREATE ROLE agency_analyst;
CREATE ROLE cross_agency_analyst;
