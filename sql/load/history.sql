-- A load's accepted batches, every version appended to history (the basis of SCD2 dimensions and
-- the daily snapshot). Rendered per entity (tenantlake.warehouse.render): stage.entity is the
-- entity's stage table, item_key its key column, __columns__ its protected columns.
INSERT INTO core.history_entity (__columns__, _op_rank)
SELECT s.__columns__, CASE WHEN s._op = 'snapshot' THEN 0 ELSE 1 END
FROM stage.entity AS s
