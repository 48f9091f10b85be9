-- The batches one load was handed, for the set-based checks and the audit (scratch).
CREATE TABLE IF NOT EXISTS stage.load_batches (
    tenant_id     VARCHAR(64)  NOT NULL,
    entity        VARCHAR(64)  NOT NULL,
    export_id     VARCHAR(128) NOT NULL,
    kind          VARCHAR(32)  NOT NULL,
    rows_expected BIGINT       NOT NULL,
    files         INTEGER      NOT NULL,
    snapshot_id   BIGINT
) DISTSTYLE ALL
