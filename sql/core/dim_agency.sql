-- Conformed agency dimension, from the tenant registry.
SELECT tenant_id, agency_name, aws_account_id, region
FROM ops.agency_registry
