-- Exposure per conformed creditor within each agency (what an agency's analyst sees of it). A debt
-- with no creditor name counts under UNKNOWN: the mart ties out to the agency's whole balance.
SELECT d.tenant_id, NVL(c.creditor_name, 'UNKNOWN') AS creditor_name, COUNT(*) AS debts,
       CAST(SUM(d.balance) AS DECIMAL(18, 2)) AS total_balance
FROM core.current_debt AS d
LEFT JOIN core.dim_creditor AS c ON c.spelling = d.creditor_name
WHERE NOT d._removed AND NOT NVL(d.is_deleted, FALSE)
GROUP BY d.tenant_id, NVL(c.creditor_name, 'UNKNOWN')
