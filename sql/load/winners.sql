-- Latest-wins per (tenant_id, key) across every accepted batch of the load: the newest version of
-- each key, kept only where it is newer than what current holds, so late or replayed batches never
-- overwrite newer rows. Newer means, in order: a later event time; a change over a snapshot of the
-- same instant; a greater stream sequence; a later file (stream files are keyed in arrival order,
-- and Firehose records carry no sequence); a later line; then export (a total order: the same
-- answer whatever order batches arrive in). Redshift's MERGE takes no condition on WHEN
-- MATCHED, so the winners are chosen here, then merged plainly. Removes and DataStore soft deletes
-- stay as rows (_removed, is_deleted), so facts can mark them.
INSERT INTO stage.entity_merge (__columns__, _op_rank, _removed)
WITH repeated AS (  -- keys staged more than once: only these need ranking (a load's other keys, most of
                    -- them, are their own newest; ranking every row cost 2-3x as much at 1M rows)
    SELECT s.tenant_id, s.item_key FROM stage.entity AS s GROUP BY s.tenant_id, s.item_key HAVING COUNT(*) > 1
)
SELECT b.__columns__, b._op_rank, b._removed
FROM (
    SELECT s.*, CASE WHEN s._op = 'snapshot' THEN 0 ELSE 1 END AS _op_rank,
           CASE WHEN s._op = 'remove' THEN TRUE ELSE FALSE END AS _removed, 1 AS _newest
    FROM stage.entity AS s
    WHERE NOT EXISTS (SELECT 1 FROM repeated AS r WHERE r.tenant_id = s.tenant_id AND r.item_key = s.item_key)
    UNION ALL
    SELECT s.*, CASE WHEN s._op = 'snapshot' THEN 0 ELSE 1 END AS _op_rank,
           CASE WHEN s._op = 'remove' THEN TRUE ELSE FALSE END AS _removed,
           ROW_NUMBER() OVER (PARTITION BY s.tenant_id, s.item_key
                              ORDER BY s._event_ts DESC, CASE WHEN s._op = 'snapshot' THEN 0 ELSE 1 END DESC,
                                       NVL(s._sequence, '') DESC, s._source_file DESC, s._line DESC,
                                       s._export_id DESC) AS _newest
    FROM stage.entity AS s
    WHERE EXISTS (SELECT 1 FROM repeated AS r WHERE r.tenant_id = s.tenant_id AND r.item_key = s.item_key)
) AS b
LEFT JOIN core.current_entity AS c ON c.tenant_id = b.tenant_id AND c.item_key = b.item_key
WHERE b._newest = 1
  AND (c.item_key IS NULL
       OR b._event_ts > c._event_ts
       OR (b._event_ts = c._event_ts AND b._op_rank > c._op_rank)
       OR (b._event_ts = c._event_ts AND b._op_rank = c._op_rank
           AND NVL(b._sequence, '') > NVL(c._sequence, ''))
       OR (b._event_ts = c._event_ts AND b._op_rank = c._op_rank
           AND NVL(b._sequence, '') = NVL(c._sequence, '') AND b._source_file > c._source_file)
       OR (b._event_ts = c._event_ts AND b._op_rank = c._op_rank
           AND NVL(b._sequence, '') = NVL(c._sequence, '') AND b._source_file = c._source_file
           AND (b._line > c._line OR (b._line = c._line AND b._export_id > c._export_id))))
