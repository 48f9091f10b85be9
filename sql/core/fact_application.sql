-- Accumulating snapshot: an application's milestones (submitted -> decided -> enrolled). Enrolled:
-- the first time any plan of the consumer was seen ACTIVE.
SELECT a.tenant_id, a.id AS application_id, a.consumer_key,
       a.status, a.channel, a.created_at, a.submitted_at, a.decided_at,
       p.enrolled_at,
       DATEDIFF(day, a.submitted_at, a.decided_at) AS days_to_decision,
       DATEDIFF(day, a.decided_at, p.enrolled_at) AS days_to_enrolment
FROM core.current_application AS a
LEFT JOIN (
    SELECT tenant_id, consumer_key, MIN(_event_ts) AS enrolled_at
    FROM core.history_plan WHERE status = 'ACTIVE' GROUP BY tenant_id, consumer_key
) AS p ON p.tenant_id = a.tenant_id AND p.consumer_key = a.consumer_key
WHERE NOT a._removed AND NOT NVL(a.is_deleted, FALSE)
