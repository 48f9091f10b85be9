-- Debt management plans, current state, with their enrolled debt from the plan-debt bridge.
SELECT p.tenant_id, p.id AS plan_id, p.consumer_key, p.counselor_id,
       p.status, p.monthly_payment, p.term_months, p.start_date,
       CAST(DATE_TRUNC('month', p.start_date) AS DATE) AS cohort_month,
       NVL(e.enrolled_debts, 0) AS enrolled_debts,
       NVL(e.enrolled_balance, 0) AS enrolled_balance,
       CASE WHEN p._removed OR NVL(p.is_deleted, FALSE) THEN TRUE ELSE FALSE END AS is_deleted
FROM core.current_plan AS p
LEFT JOIN (
    SELECT b.tenant_id, b.plan_id, COUNT(*) AS enrolled_debts, SUM(d.balance) AS enrolled_balance
    FROM core.bridge_plan_debt AS b
    JOIN core.current_debt AS d
      ON d.tenant_id = b.tenant_id AND d.id = b.debt_id AND NOT d._removed AND NOT NVL(d.is_deleted, FALSE)
    GROUP BY b.tenant_id, b.plan_id
) AS e ON e.tenant_id = p.tenant_id AND e.plan_id = p.id
