-- The lake snapshot each entity's protected table was last loaded up to.
CREATE TABLE IF NOT EXISTS ops.load_cursor (
    entity      VARCHAR(64) NOT NULL,
    snapshot_id BIGINT      NOT NULL,
    loaded_at   TIMESTAMP   NOT NULL,
    PRIMARY KEY (entity)
) DISTSTYLE ALL
