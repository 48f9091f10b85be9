-- Template for every entity (rendered with {{ entity }}): all versions ever loaded, the basis of
-- SCD2 dimensions and daily snapshots. Appended from the stage batch inside the batch's transaction.
INSERT INTO core.history_{{ entity }}
SELECT s.*, CASE WHEN s._op = 'snapshot' THEN 0 ELSE 1 END AS _op_rank
FROM stage.{{ entity }} AS s
