-- Payment transactions, current state; removed or soft-deleted payments are marked, not dropped.
SELECT tenant_id, id AS payment_id, plan_id, consumer_key,
       amount, status, scheduled_date, paid_at,
       CAST(DATE_TRUNC('month', paid_at) AS DATE) AS paid_month,
       CASE WHEN _removed OR NVL(is_deleted, FALSE) THEN TRUE ELSE FALSE END AS is_deleted
FROM core.current_payment
