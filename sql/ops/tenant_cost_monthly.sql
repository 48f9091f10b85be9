-- Estimated cost per agency and month (tenantlake.ops.costs), refilled whole by warehouse_load.
CREATE TABLE IF NOT EXISTS ops.tenant_cost_monthly (
    tenant_id      VARCHAR(64) NOT NULL,
    month          DATE        NOT NULL,
    batches        BIGINT,
    rows_loaded    BIGINT,
    bytes_exported BIGINT,
    export_usd     DOUBLE PRECISION,
    bytes_stored   BIGINT,
    storage_usd    DOUBLE PRECISION,
    load_runs      BIGINT,
    load_usd       DOUBLE PRECISION,
    total_usd      DOUBLE PRECISION,
    prices_read    DATE,
    computed_at    TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, month)
) DISTSTYLE ALL SORTKEY (tenant_id, month)
