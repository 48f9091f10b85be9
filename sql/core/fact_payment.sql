-- Payment transactions, current state; removed or soft-deleted payments are marked, not dropped.
CREATE TABLE core.fact_payment DISTKEY (plan_id) SORTKEY (tenant_id, paid_at) AS
SELECT tenant_id, id AS payment_id, plan_id, f_pseudonym(tenant_id, consumer_id) AS consumer_key,
       amount, status, scheduled_date, paid_at,
       CAST(DATE_TRUNC('month', paid_at) AS DATE) AS paid_month,
       CASE WHEN _removed OR NVL(is_deleted, FALSE) THEN TRUE ELSE FALSE END AS is_deleted
FROM core.current_payment
