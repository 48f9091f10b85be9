-- Row-level security: an agency's analyst role sees only its tenant_id; the cross-agency role sees
-- all. Each agency analyst is a database user mapped to one tenant in ops.analyst_tenant.
CREATE TABLE IF NOT EXISTS ops.analyst_tenant (
    username  VARCHAR(128) NOT NULL,
    tenant_id VARCHAR(64)  NOT NULL,
    PRIMARY KEY (username)
) DISTSTYLE ALL;
CREATE RLS POLICY tenant_isolation
WITH (tenant_id VARCHAR(64))
USING (tenant_id = (SELECT a.tenant_id FROM ops.analyst_tenant AS a WHERE a.username = current_user));
ATTACH RLS POLICY tenant_isolation ON mart.agency_kpis_monthly TO ROLE agency_analyst;
ATTACH RLS POLICY tenant_isolation ON mart.agency_snapshot TO ROLE agency_analyst;
ATTACH RLS POLICY tenant_isolation ON mart.creditor_exposure_by_agency TO ROLE agency_analyst;
ATTACH RLS POLICY tenant_isolation ON mart.enrolment_funnel TO ROLE agency_analyst;
ATTACH RLS POLICY tenant_isolation ON mart.plan_outcomes_by_cohort TO ROLE agency_analyst;
ALTER TABLE mart.agency_kpis_monthly ROW LEVEL SECURITY ON;
ALTER TABLE mart.agency_snapshot ROW LEVEL SECURITY ON;
ALTER TABLE mart.creditor_exposure_by_agency ROW LEVEL SECURITY ON;
ALTER TABLE mart.enrolment_funnel ROW LEVEL SECURITY ON;
ALTER TABLE mart.plan_outcomes_by_cohort ROW LEVEL SECURITY ON;
GRANT USAGE ON SCHEMA mart TO ROLE agency_analyst, ROLE cross_agency_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA mart TO ROLE agency_analyst, ROLE cross_agency_analyst;
GRANT IGNORE RLS TO ROLE cross_agency_analyst;
-- The cross-agency creditor view aggregates every agency by design: agency analysts do not get it.
REVOKE SELECT ON mart.creditor_exposure FROM ROLE agency_analyst;
