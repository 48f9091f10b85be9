-- Exposure per conformed creditor across agencies: live debt balance, debts and agencies holding it.
CREATE TABLE mart.creditor_exposure DISTSTYLE ALL SORTKEY (creditor_name) AS
SELECT c.creditor_name,
       COUNT(DISTINCT d.tenant_id) AS agencies,
       COUNT(*) AS debts,
       CAST(SUM(d.balance) AS DECIMAL(18, 2)) AS total_balance
FROM core.current_debt AS d
JOIN core.dim_creditor AS c ON c.spelling = d.creditor_name
WHERE NOT d._removed AND NOT NVL(d.is_deleted, FALSE)
GROUP BY c.creditor_name;

COMMENT ON TABLE mart.creditor_exposure IS 'Cross-agency exposure per conformed creditor: live debt balance (USD), debts, agencies holding it.'
