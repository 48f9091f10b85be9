-- Monthly budget per consumer (the data's current month): income, expenses, minimum debt
-- payments and debt-to-income (minimum payments / income).
WITH inc AS (
    SELECT tenant_id, consumer_key, SUM(monthly_amount) AS income FROM core.current_income
    WHERE NOT _removed AND NOT NVL(is_deleted, FALSE) GROUP BY tenant_id, consumer_key
), exp AS (
    SELECT tenant_id, consumer_key, SUM(monthly_amount) AS expenses FROM core.current_expense
    WHERE NOT _removed AND NOT NVL(is_deleted, FALSE) GROUP BY tenant_id, consumer_key
), dbt AS (
    SELECT tenant_id, consumer_key, SUM(minimum_payment) AS minimum_payments FROM core.current_debt
    WHERE NOT _removed AND NOT NVL(is_deleted, FALSE) GROUP BY tenant_id, consumer_key
)
SELECT c.tenant_id, c.consumer_key,
       NVL(inc.income, 0) AS monthly_income, NVL(exp.expenses, 0) AS monthly_expenses,
       NVL(dbt.minimum_payments, 0) AS minimum_payments,
       CASE WHEN NVL(inc.income, 0) > 0 THEN CAST(NVL(dbt.minimum_payments, 0) / inc.income AS DECIMAL(12, 4)) END
           AS debt_to_income
FROM core.current_consumer AS c
LEFT JOIN inc ON inc.tenant_id = c.tenant_id AND inc.consumer_key = c.consumer_key
LEFT JOIN exp ON exp.tenant_id = c.tenant_id AND exp.consumer_key = c.consumer_key
LEFT JOIN dbt ON dbt.tenant_id = c.tenant_id AND dbt.consumer_key = c.consumer_key
WHERE NOT c._removed AND NOT NVL(c.is_deleted, FALSE)
