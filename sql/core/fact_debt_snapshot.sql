-- Daily periodic snapshot: each live debt's state at the end of each day it existed in the lake.
CREATE TABLE core.fact_debt_snapshot DISTKEY (debt_id) SORTKEY (tenant_id, snapshot_date) AS
WITH versions AS (
    -- pseudonymised once per version, not once per day it spans (on Redshift, a Lambda call per row)
    SELECT h.tenant_id, h.id, f_pseudonym(h.tenant_id, h.consumer_id) AS consumer_key, h.creditor_name,
           h.balance, h.apr, h.delinquency_days,
           CASE WHEN h._op = 'remove' OR NVL(h.is_deleted, FALSE) THEN TRUE ELSE FALSE END AS gone,
           h._event_ts AS valid_from,
           LEAD(h._event_ts) OVER (PARTITION BY h.tenant_id, h.id
                                   ORDER BY h._event_ts, h._op_rank, NVL(h._sequence, ''), h._line) AS valid_to
    FROM core.history_debt AS h
), span AS (
    SELECT CAST(MIN(_event_ts) AS DATE) AS first_day, CAST(MAX(_event_ts) AS DATE) AS last_day FROM core.history_debt
)
SELECT d.calendar_date AS snapshot_date, v.tenant_id, v.id AS debt_id,
       v.consumer_key, c.creditor_key,
       v.balance, v.apr, v.delinquency_days
FROM core.dim_date AS d
JOIN span ON d.calendar_date BETWEEN span.first_day AND span.last_day
JOIN versions AS v
  ON v.valid_from < DATEADD(day, 1, d.calendar_date)
 AND (v.valid_to IS NULL OR v.valid_to >= DATEADD(day, 1, d.calendar_date))
LEFT JOIN core.dim_creditor AS c ON c.spelling = v.creditor_name
WHERE NOT v.gone
