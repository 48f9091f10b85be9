-- Template for every entity (rendered with {{ entity }}, {{ columns }}, {{ b_columns }} and
-- {{ update_set }}): the latest state of each item, latest-wins by its own event time.
-- A late or replayed batch never overwrites a newer row: the order is (_event_ts, op rank: a change
-- beats a snapshot of the same instant, _sequence, _line). Redshift's MERGE takes no condition on
-- WHEN MATCHED, so the winners are chosen first into stage.{{ entity }}_merge, then merged plainly.
-- Removes and DataStore soft deletes stay as rows (_removed, is_deleted), so facts can mark them.
DELETE FROM stage.{{ entity }}_merge;

INSERT INTO stage.{{ entity }}_merge ({{ columns }})
SELECT {{ b_columns }}
FROM (
    SELECT s.*, CASE WHEN s._op = 'snapshot' THEN 0 ELSE 1 END AS _op_rank,
           CASE WHEN s._op = 'remove' THEN TRUE ELSE FALSE END AS _removed,
           ROW_NUMBER() OVER (PARTITION BY s.tenant_id, s.id
                              ORDER BY s._event_ts DESC, CASE WHEN s._op = 'snapshot' THEN 0 ELSE 1 END DESC,
                                       NVL(s._sequence, '') DESC, s._line DESC) AS _newest
    FROM stage.{{ entity }} AS s
) AS b
LEFT JOIN core.current_{{ entity }} AS c ON c.tenant_id = b.tenant_id AND c.id = b.id
WHERE b._newest = 1
  AND (c.id IS NULL
       OR b._event_ts > c._event_ts
       OR (b._event_ts = c._event_ts AND b._op_rank > c._op_rank)
       OR (b._event_ts = c._event_ts AND b._op_rank = c._op_rank AND NVL(b._sequence, '') > NVL(c._sequence, ''))
       OR (b._event_ts = c._event_ts AND b._op_rank = c._op_rank AND NVL(b._sequence, '') = NVL(c._sequence, '')
           AND b._line > c._line));

MERGE INTO core.current_{{ entity }}
USING stage.{{ entity }}_merge AS b
ON core.current_{{ entity }}.tenant_id = b.tenant_id AND core.current_{{ entity }}.id = b.id
WHEN MATCHED THEN UPDATE SET {{ update_set }}
WHEN NOT MATCHED THEN INSERT ({{ columns }}) VALUES ({{ b_columns }})
