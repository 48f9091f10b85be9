-- One load's new event spans per tenant, before they replace ops.event_span's (scratch).
CREATE TABLE IF NOT EXISTS stage.spans (
    tenant_id      VARCHAR(64) NOT NULL,
    entity         VARCHAR(64) NOT NULL,
    first_event_ts TIMESTAMPTZ NOT NULL,
    last_event_ts  TIMESTAMPTZ NOT NULL
) DISTSTYLE ALL
