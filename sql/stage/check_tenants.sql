-- The tenants one run of the post-load checks looks at (scratch).
CREATE TABLE IF NOT EXISTS stage.check_tenants (
    tenant_id VARCHAR(64) NOT NULL
) DISTSTYLE ALL
