-- Which tenant each agency analyst (a database user) may see: the tenant policy's lookup table.
CREATE TABLE IF NOT EXISTS ops.analyst_tenant (
    username  VARCHAR(128) NOT NULL,
    tenant_id VARCHAR(64)  NOT NULL,
    PRIMARY KEY (username)
) DISTSTYLE ALL
