-- Each tenant's event span (ops.event_span) widened by the load; a span that reaches a new day is
-- recorded for the refresh, which then extends the daily snapshot by the new days only.
INSERT INTO stage.spans (tenant_id, entity, first_event_ts, last_event_ts)
SELECT x.tenant_id, :entity, MIN(x.first_event_ts), MAX(x.last_event_ts)
FROM (
    SELECT s.tenant_id, s._event_ts AS first_event_ts, s._event_ts AS last_event_ts FROM stage.entity AS s
    UNION ALL
    SELECT o.tenant_id, o.first_event_ts, o.last_event_ts FROM ops.event_span AS o
    WHERE o.entity = :entity AND EXISTS (SELECT 1 FROM stage.entity AS s WHERE s.tenant_id = o.tenant_id)
) AS x
GROUP BY x.tenant_id;

INSERT INTO ops.refresh_pending (source, tenant_id, item_key, consumer_key, since)
SELECT :span, n.tenant_id, NULL, NULL, CAST(DATEADD(day, 1, CAST(o.last_event_ts AS DATE)) AS DATE)
FROM stage.spans AS n
JOIN ops.event_span AS o ON o.tenant_id = n.tenant_id AND o.entity = n.entity
WHERE CAST(n.last_event_ts AS DATE) > CAST(o.last_event_ts AS DATE);

DELETE FROM ops.event_span USING stage.spans AS n
WHERE ops.event_span.tenant_id = n.tenant_id AND ops.event_span.entity = n.entity;

INSERT INTO ops.event_span (tenant_id, entity, first_event_ts, last_event_ts)
SELECT tenant_id, entity, first_event_ts, last_event_ts FROM stage.spans;

DELETE FROM stage.spans
