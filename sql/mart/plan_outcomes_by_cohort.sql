-- Plan outcomes by start-month cohort, per agency; a status the contract does not list counts in
-- other_status (and in plans).
SELECT tenant_id, cohort_month,
       COUNT(*) AS plans,
       SUM(CASE WHEN status = 'PROPOSED' THEN 1 ELSE 0 END) AS proposed,
       SUM(CASE WHEN status = 'ACTIVE' THEN 1 ELSE 0 END) AS active,
       SUM(CASE WHEN status = 'COMPLETED' THEN 1 ELSE 0 END) AS completed,
       SUM(CASE WHEN status = 'CANCELLED' THEN 1 ELSE 0 END) AS cancelled,
       SUM(CASE WHEN status IN ('PROPOSED', 'ACTIVE', 'COMPLETED', 'CANCELLED') THEN 0 ELSE 1 END) AS other_status,
       CAST(SUM(monthly_payment) AS DECIMAL(18, 2)) AS monthly_payments
FROM core.fact_plan
WHERE NOT is_deleted
GROUP BY tenant_id, cohort_month
