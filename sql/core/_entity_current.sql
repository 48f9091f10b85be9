-- Template for every entity (rendered with {{ entity }} and {{ columns }}): the latest state of each
-- item, latest-wins by its own event time. A late or replayed batch never overwrites a newer row:
-- the order is (_event_ts, op rank: a change beats a snapshot of the same instant, _sequence, _line).
-- Removes and DataStore soft deletes are kept as rows with _removed = TRUE, so facts can mark them.
MERGE INTO core.current_{{ entity }}
USING (
    SELECT *
    FROM (
        SELECT s.*, CASE WHEN s._op = 'snapshot' THEN 0 ELSE 1 END AS _op_rank,
               CASE WHEN s._op = 'remove' THEN TRUE ELSE FALSE END AS _removed,
               ROW_NUMBER() OVER (PARTITION BY s.tenant_id, s.id
                                  ORDER BY s._event_ts DESC, CASE WHEN s._op = 'snapshot' THEN 0 ELSE 1 END DESC,
                                           NVL(s._sequence, '') DESC, s._line DESC) AS _newest
        FROM stage.{{ entity }} AS s
    ) AS ranked
    WHERE _newest = 1
) AS b
ON core.current_{{ entity }}.tenant_id = b.tenant_id AND core.current_{{ entity }}.id = b.id
WHEN MATCHED AND (
        b._event_ts > core.current_{{ entity }}._event_ts
     OR (b._event_ts = core.current_{{ entity }}._event_ts AND b._op_rank > core.current_{{ entity }}._op_rank)
     OR (b._event_ts = core.current_{{ entity }}._event_ts AND b._op_rank = core.current_{{ entity }}._op_rank
         AND NVL(b._sequence, '') > NVL(core.current_{{ entity }}._sequence, ''))
     OR (b._event_ts = core.current_{{ entity }}._event_ts AND b._op_rank = core.current_{{ entity }}._op_rank
         AND NVL(b._sequence, '') = NVL(core.current_{{ entity }}._sequence, '') AND b._line > core.current_{{ entity }}._line)
) THEN UPDATE SET {{ update_set }}
WHEN NOT MATCHED THEN INSERT ({{ columns }}) VALUES ({{ values }})
