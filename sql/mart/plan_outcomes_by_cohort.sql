-- Plan outcomes by start-month cohort, per agency.
CREATE TABLE mart.plan_outcomes_by_cohort DISTSTYLE ALL SORTKEY (tenant_id, cohort_month) AS
SELECT tenant_id, cohort_month,
       COUNT(*) AS plans,
       SUM(CASE WHEN status = 'PROPOSED' THEN 1 ELSE 0 END) AS proposed,
       SUM(CASE WHEN status = 'ACTIVE' THEN 1 ELSE 0 END) AS active,
       SUM(CASE WHEN status = 'COMPLETED' THEN 1 ELSE 0 END) AS completed,
       SUM(CASE WHEN status = 'CANCELLED' THEN 1 ELSE 0 END) AS cancelled,
       CAST(SUM(monthly_payment) AS DECIMAL(18, 2)) AS monthly_payments
FROM core.fact_plan
WHERE NOT is_deleted
GROUP BY tenant_id, cohort_month;

COMMENT ON TABLE mart.plan_outcomes_by_cohort IS 'Debt management plans by start-month cohort: proposed, active, completed, cancelled, monthly payments (USD).'
