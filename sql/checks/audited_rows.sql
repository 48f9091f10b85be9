-- Every history row came from a batch the load audit recorded for the same tenant.
SELECT h.tenant_id, COUNT(*) AS n
FROM core.history_entity AS h
WHERE h.tenant_id IN (SELECT tenant_id FROM stage.check_tenants)
  AND NOT EXISTS (SELECT 1 FROM ops.load_audit AS a
                  WHERE a.tenant_id = h.tenant_id AND a.entity = :entity AND a.export_id = h._export_id)
GROUP BY h.tenant_id
