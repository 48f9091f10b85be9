-- What loads changed that the refresh has not yet carried into dimensions, facts and marts.
CREATE TABLE IF NOT EXISTS ops.refresh_pending (
    source       VARCHAR(64)   NOT NULL,
    tenant_id    VARCHAR(64),
    item_key     VARCHAR(4096),
    consumer_key VARCHAR(128),
    since        DATE
) DISTSTYLE EVEN
