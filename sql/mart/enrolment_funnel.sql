-- Enrolment funnel per agency: consumers by the stage they are at now.
CREATE TABLE mart.enrolment_funnel DISTSTYLE ALL SORTKEY (tenant_id) AS
SELECT tenant_id,
       COUNT(*) AS consumers,
       SUM(CASE WHEN status = 'LEAD' THEN 1 ELSE 0 END) AS leads,
       SUM(CASE WHEN status = 'APPLYING' THEN 1 ELSE 0 END) AS applying,
       SUM(CASE WHEN status = 'COUNSELED' THEN 1 ELSE 0 END) AS counseled,
       SUM(CASE WHEN status = 'ENROLLED' THEN 1 ELSE 0 END) AS enrolled,
       SUM(CASE WHEN status = 'GRADUATED' THEN 1 ELSE 0 END) AS graduated,
       SUM(CASE WHEN status = 'DROPPED' THEN 1 ELSE 0 END) AS dropped
FROM core.current_consumer
WHERE NOT _removed AND NOT NVL(is_deleted, FALSE)
GROUP BY tenant_id;

COMMENT ON TABLE mart.enrolment_funnel IS 'Consumers per agency by the stage they are at now (lead to graduated, or dropped).'
