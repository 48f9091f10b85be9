-- Conformed agency dimension, from the tenant registry.
CREATE TABLE core.dim_agency DISTSTYLE ALL SORTKEY (tenant_id) AS
SELECT tenant_id, agency_name, aws_account_id, region
FROM ops.agency_registry
