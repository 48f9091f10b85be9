-- Exposure per conformed creditor across agencies: the per-agency exposure summed (a refresh reads
-- one row per agency and creditor, not every debt).
SELECT creditor_name,
       COUNT(*) AS agencies,
       SUM(debts) AS debts,
       CAST(SUM(total_balance) AS DECIMAL(18, 2)) AS total_balance
FROM mart.creditor_exposure_by_agency
GROUP BY creditor_name
