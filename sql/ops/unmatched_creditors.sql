-- Creditor spellings no alias matched, per agency, for a data steward to map: each stands as its
-- own creditor (creditor_name, its normalised words) until an alias for it is added to
-- sql/seeds/creditor_aliases.csv; the next refresh then conforms it, history included, and it
-- leaves this list. Rebuilt right after core.dim_creditor, in the same refresh transaction.
-- debts: distinct debts that ever carried the spelling; live_*: the debts carrying it now.
CREATE TABLE ops.unmatched_creditors DISTSTYLE ALL SORTKEY (tenant_id, creditor_name) AS
WITH seen AS (
    SELECT tenant_id, id, creditor_name AS spelling, _event_ts FROM core.history_debt WHERE creditor_name IS NOT NULL
    UNION
    SELECT tenant_id, id, creditor_name AS spelling, _event_ts FROM core.current_debt WHERE creditor_name IS NOT NULL
), versions AS (
    SELECT tenant_id, spelling, COUNT(DISTINCT id) AS debts, MIN(_event_ts) AS first_seen, MAX(_event_ts) AS last_seen
    FROM seen
    GROUP BY tenant_id, spelling
), live AS (
    SELECT tenant_id, creditor_name AS spelling, COUNT(*) AS live_debts, SUM(balance) AS live_balance
    FROM core.current_debt
    WHERE creditor_name IS NOT NULL AND NOT _removed AND NOT NVL(is_deleted, FALSE)
    GROUP BY tenant_id, creditor_name
)
SELECT c.creditor_name, c.spelling, v.tenant_id, v.debts,
       NVL(l.live_debts, 0) AS live_debts,
       CAST(NVL(l.live_balance, 0) AS DECIMAL(18, 2)) AS live_balance,
       v.first_seen, v.last_seen
FROM core.dim_creditor AS c
JOIN versions AS v ON v.spelling = c.spelling
LEFT JOIN live AS l ON l.tenant_id = v.tenant_id AND l.spelling = v.spelling
WHERE c.alias IS NULL
