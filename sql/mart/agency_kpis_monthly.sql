-- Agency KPIs by calendar month: new consumers, applications, approval rate, payments collected.
-- One row per (tenant_id, month) with any activity. BI-facing: stable names.
WITH consumers AS (
    SELECT tenant_id, CAST(DATE_TRUNC('month', created_at) AS DATE) AS month, COUNT(*) AS new_consumers
    FROM core.current_consumer WHERE NOT _removed AND NOT NVL(is_deleted, FALSE) AND created_at IS NOT NULL
    GROUP BY 1, 2
), apps AS (
    SELECT tenant_id, CAST(DATE_TRUNC('month', submitted_at) AS DATE) AS month, COUNT(*) AS applications_submitted
    FROM core.fact_application WHERE submitted_at IS NOT NULL GROUP BY 1, 2
), decisions AS (
    SELECT tenant_id, CAST(DATE_TRUNC('month', decided_at) AS DATE) AS month,
           SUM(CASE WHEN status = 'APPROVED' THEN 1 ELSE 0 END) AS approved, COUNT(*) AS decided
    FROM core.fact_application WHERE decided_at IS NOT NULL GROUP BY 1, 2
), pay AS (
    SELECT tenant_id, paid_month AS month, SUM(amount) AS payments_collected, COUNT(*) AS payments_settled
    FROM core.fact_payment WHERE status = 'SETTLED' AND NOT is_deleted AND paid_month IS NOT NULL GROUP BY 1, 2
), months AS (
    -- the months some measure counts: a removed consumer (a Keys-only delete has no created_at) made
    -- a row with a NULL month, and one whose month had nothing else a row of zeros
    SELECT tenant_id, month FROM consumers
    UNION SELECT tenant_id, month FROM apps
    UNION SELECT tenant_id, month FROM decisions
    UNION SELECT tenant_id, month FROM pay
)
SELECT m.tenant_id, a.agency_name, m.month,
       NVL(c.new_consumers, 0) AS new_consumers,
       NVL(ap.applications_submitted, 0) AS applications_submitted,
       NVL(d.approved, 0) AS applications_approved,
       CASE WHEN NVL(d.decided, 0) > 0 THEN CAST(CAST(d.approved AS DECIMAL(12, 4)) / d.decided AS DECIMAL(12, 4)) END
           AS approval_rate,
       NVL(p.payments_settled, 0) AS payments_settled,
       CAST(NVL(p.payments_collected, 0) AS DECIMAL(18, 2)) AS payments_collected
FROM months AS m
JOIN core.dim_agency AS a ON a.tenant_id = m.tenant_id
LEFT JOIN consumers AS c ON c.tenant_id = m.tenant_id AND c.month = m.month
LEFT JOIN apps AS ap ON ap.tenant_id = m.tenant_id AND ap.month = m.month
LEFT JOIN decisions AS d ON d.tenant_id = m.tenant_id AND d.month = m.month
LEFT JOIN pay AS p ON p.tenant_id = m.tenant_id AND p.month = m.month
