-- Daily periodic snapshot: each live debt's state at the end of each day of its tenant's span (the
-- first to the last day of the tenant's debt events, ops.event_span). A version holds from its
-- event time until the next version's.
WITH versions AS (
    SELECT h.tenant_id, h.id, h.consumer_key, h.creditor_name, h.balance, h.apr, h.delinquency_days,
           CASE WHEN h._op = 'remove' OR NVL(h.is_deleted, FALSE) THEN TRUE ELSE FALSE END AS gone,
           h._event_ts AS valid_from,
           LEAD(h._event_ts) OVER (PARTITION BY h.tenant_id, h.id
                                   ORDER BY h._event_ts, h._op_rank, NVL(h._sequence, ''), h._source_file, h._line,
                                            h._export_id) AS valid_to
    FROM core.history_debt AS h
), span AS (
    SELECT tenant_id, CAST(first_event_ts AS DATE) AS first_day, CAST(last_event_ts AS DATE) AS last_day
    FROM ops.event_span WHERE entity = 'Debt'
)
SELECT d.calendar_date AS snapshot_date, v.tenant_id, v.id AS debt_id,
       v.consumer_key, c.creditor_key,
       v.balance, v.apr, v.delinquency_days
FROM versions AS v
JOIN span ON span.tenant_id = v.tenant_id
JOIN core.dim_date AS d
  ON d.calendar_date BETWEEN span.first_day AND span.last_day
 AND v.valid_from < DATEADD(day, 1, d.calendar_date)
 AND (v.valid_to IS NULL OR v.valid_to >= DATEADD(day, 1, d.calendar_date))
LEFT JOIN core.dim_creditor AS c ON c.spelling = v.creditor_name
WHERE NOT v.gone
