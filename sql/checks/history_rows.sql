-- History holds every row the lake published for the entity: per tenant checked, the two counts.
-- Rendered per entity like the load templates; stage.check_tenants holds the tenants to check.
SELECT t.tenant_id, NVL(w.n, 0) AS warehouse, NVL(l.n, 0) AS lake
FROM stage.check_tenants AS t
LEFT JOIN (
    SELECT tenant_id, COUNT(*) AS n FROM core.history_entity
    WHERE tenant_id IN (SELECT tenant_id FROM stage.check_tenants) GROUP BY tenant_id
) AS w ON w.tenant_id = t.tenant_id
LEFT JOIN (
    SELECT tenant_id, COUNT(*) AS n FROM lake_protected.entity
    WHERE tenant_id IN (SELECT tenant_id FROM stage.check_tenants) GROUP BY tenant_id
) AS l ON l.tenant_id = t.tenant_id
WHERE NVL(w.n, 0) <> NVL(l.n, 0)
