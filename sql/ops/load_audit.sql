-- One row per (tenant, entity, export) applied to the warehouse: what makes every load exactly-once.
CREATE TABLE IF NOT EXISTS ops.load_audit (
    tenant_id     VARCHAR(64)  NOT NULL,
    entity        VARCHAR(64)  NOT NULL,
    export_id     VARCHAR(128) NOT NULL,
    kind          VARCHAR(32)  NOT NULL,
    rows_expected BIGINT       NOT NULL,
    rows_loaded   BIGINT       NOT NULL,
    files         INTEGER      NOT NULL,
    snapshot_id   BIGINT,
    loaded_at     TIMESTAMP    NOT NULL,
    PRIMARY KEY (tenant_id, entity, export_id)
) DISTSTYLE ALL SORTKEY (tenant_id, entity, export_id)
