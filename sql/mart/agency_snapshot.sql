-- Each agency now: live debt under management, debt enrolled in active plans, active plans.
WITH debt AS (
    SELECT tenant_id, COUNT(*) AS live_debts, SUM(balance) AS debt_balance FROM core.current_debt
    WHERE NOT _removed AND NOT NVL(is_deleted, FALSE) GROUP BY tenant_id
), plans AS (
    SELECT tenant_id, SUM(CASE WHEN status = 'ACTIVE' THEN enrolled_balance ELSE 0 END) AS enrolled_debt,
           SUM(CASE WHEN status = 'ACTIVE' THEN 1 ELSE 0 END) AS active_plans
    FROM core.fact_plan WHERE NOT is_deleted GROUP BY tenant_id
)
SELECT a.tenant_id, a.agency_name, NVL(debt.live_debts, 0) AS live_debts,
       CAST(NVL(debt.debt_balance, 0) AS DECIMAL(18, 2)) AS debt_balance,
       CAST(NVL(plans.enrolled_debt, 0) AS DECIMAL(18, 2)) AS enrolled_debt,
       NVL(plans.active_plans, 0) AS active_plans
FROM core.dim_agency AS a
LEFT JOIN debt ON debt.tenant_id = a.tenant_id
LEFT JOIN plans ON plans.tenant_id = a.tenant_id
