-- The first and last event time loaded per tenant and entity.
CREATE TABLE IF NOT EXISTS ops.event_span (
    tenant_id      VARCHAR(64) NOT NULL,
    entity         VARCHAR(64) NOT NULL,
    first_event_ts TIMESTAMPTZ NOT NULL,
    last_event_ts  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, entity)
) DISTSTYLE ALL SORTKEY (tenant_id, entity)
