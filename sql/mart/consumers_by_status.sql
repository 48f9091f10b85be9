-- The funnel in long form: live consumers per agency and status, each status as sent (a new value
-- from a newer app counts under its own name).
SELECT tenant_id, status, COUNT(*) AS consumers
FROM core.current_consumer
WHERE NOT _removed AND NOT NVL(is_deleted, FALSE)
GROUP BY tenant_id, status
