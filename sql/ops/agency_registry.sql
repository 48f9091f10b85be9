-- The tenant registry as a table, refreshed on every load (source of dim_agency).
CREATE TABLE IF NOT EXISTS ops.agency_registry (
    tenant_id      VARCHAR(64)  NOT NULL,
    agency_name    VARCHAR(256) NOT NULL,
    aws_account_id VARCHAR(12)  NOT NULL,
    region         VARCHAR(32)  NOT NULL,
    PRIMARY KEY (tenant_id)
) DISTSTYLE ALL SORTKEY (tenant_id)
