-- Accumulating snapshot: an application's milestones (submitted -> decided -> enrolled).
CREATE TABLE core.fact_application DISTKEY (consumer_key) SORTKEY (tenant_id, submitted_at) AS
SELECT a.tenant_id, a.id AS application_id, f_pseudonym(a.tenant_id, a.consumer_id) AS consumer_key,
       a.status, a.channel, a.created_at, a.submitted_at, a.decided_at,
       p.enrolled_at,
       DATEDIFF(day, a.submitted_at, a.decided_at) AS days_to_decision,
       DATEDIFF(day, a.decided_at, p.enrolled_at) AS days_to_enrolment
FROM core.current_application AS a
LEFT JOIN (
    SELECT tenant_id, consumer_id, MIN(_event_ts) AS enrolled_at
    FROM core.history_plan WHERE status = 'ACTIVE' GROUP BY tenant_id, consumer_id
) AS p ON p.tenant_id = a.tenant_id AND p.consumer_id = a.consumer_id
WHERE NOT a._removed AND NOT NVL(a.is_deleted, FALSE)
