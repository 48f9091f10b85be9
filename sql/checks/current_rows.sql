-- Current holds, per tenant and key, the lake's latest version: re-derived here from the lake's
-- protected table (not from history, not with the load's statements) by the documented order.
--   missing: a key of the tenant's lake rows that current lacks
--   foreign: a current row whose (tenant, key) the lake has no row for: a row under the wrong tenant
--   stale:   a current row that is not the lake's latest version of its key (latest-wins broken)
WITH ranked AS (
    SELECT l.tenant_id, l.item_key, l._event_ts, l._export_id, l._source_file, l._line,
           ROW_NUMBER() OVER (PARTITION BY l.tenant_id, l.item_key
                              ORDER BY l._event_ts DESC, CASE WHEN l._op = 'snapshot' THEN 0 ELSE 1 END DESC,
                                       NVL(l._sequence, '') DESC, l._source_file DESC, l._line DESC,
                                       l._export_id DESC) AS newest
    FROM lake_protected.entity AS l
    WHERE l.tenant_id IN (SELECT tenant_id FROM stage.check_tenants)
), latest AS (
    SELECT * FROM ranked WHERE newest = 1
), cur AS (
    SELECT * FROM core.current_entity WHERE tenant_id IN (SELECT tenant_id FROM stage.check_tenants)
)
SELECT NVL(latest.tenant_id, cur.tenant_id) AS tenant_id,
       SUM(CASE WHEN cur.item_key IS NULL THEN 1 ELSE 0 END) AS missing,
       SUM(CASE WHEN latest.item_key IS NULL THEN 1 ELSE 0 END) AS foreign_rows,
       SUM(CASE WHEN cur.item_key IS NOT NULL AND latest.item_key IS NOT NULL
                 AND (cur._event_ts <> latest._event_ts OR cur._export_id <> latest._export_id
                      OR cur._source_file <> latest._source_file OR cur._line <> latest._line)
                THEN 1 ELSE 0 END) AS stale
FROM latest
FULL OUTER JOIN cur ON cur.tenant_id = latest.tenant_id AND cur.item_key = latest.item_key
GROUP BY NVL(latest.tenant_id, cur.tenant_id)
HAVING SUM(CASE WHEN cur.item_key IS NULL OR latest.item_key IS NULL THEN 1 ELSE 0 END) > 0
    OR SUM(CASE WHEN cur.item_key IS NOT NULL AND latest.item_key IS NOT NULL
                 AND (cur._event_ts <> latest._event_ts OR cur._export_id <> latest._export_id
                      OR cur._source_file <> latest._source_file OR cur._line <> latest._line)
                THEN 1 ELSE 0 END) > 0
