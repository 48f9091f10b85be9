-- Enrolment funnel per agency: live consumers by the stage they are at now. A status the contract
-- does not list (an agency on a newer app) counts in other_status and in consumers, and under its
-- own value in mart.consumers_by_status: never dropped.
SELECT tenant_id,
       COUNT(*) AS consumers,
       SUM(CASE WHEN status = 'LEAD' THEN 1 ELSE 0 END) AS leads,
       SUM(CASE WHEN status = 'APPLYING' THEN 1 ELSE 0 END) AS applying,
       SUM(CASE WHEN status = 'COUNSELED' THEN 1 ELSE 0 END) AS counseled,
       SUM(CASE WHEN status = 'ENROLLED' THEN 1 ELSE 0 END) AS enrolled,
       SUM(CASE WHEN status = 'GRADUATED' THEN 1 ELSE 0 END) AS graduated,
       SUM(CASE WHEN status = 'DROPPED' THEN 1 ELSE 0 END) AS dropped,
       SUM(CASE WHEN status IN ('LEAD', 'APPLYING', 'COUNSELED', 'ENROLLED', 'GRADUATED', 'DROPPED') THEN 0 ELSE 1 END)
           AS other_status
FROM core.current_consumer
WHERE NOT _removed AND NOT NVL(is_deleted, FALSE)
GROUP BY tenant_id
