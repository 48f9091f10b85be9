-- What each agency's data carried that the contracts do not declare (tenantlake.ops.drift),
-- refilled whole by warehouse_load: the list a data engineer reads before promoting an attribute.
CREATE TABLE IF NOT EXISTS ops.drift_summary (
    tenant_id     VARCHAR(64)   NOT NULL,
    entity        VARCHAR(64)   NOT NULL,
    path          VARCHAR(1024) NOT NULL,
    dynamodb_type VARCHAR(16),
    what          VARCHAR(16)   NOT NULL,
    rows          BIGINT        NOT NULL,
    batches       BIGINT        NOT NULL,
    first_seen    TIMESTAMPTZ,
    last_seen     TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, entity, path, dynamodb_type, what)
) DISTSTYLE ALL SORTKEY (tenant_id, entity, path)
