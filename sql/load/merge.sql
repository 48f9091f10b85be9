-- The winners into current, keyed by (tenant_id, key): the tenant is part of the key, so the same
-- id in two agencies is two items.
MERGE INTO core.current_entity
USING stage.entity_merge AS b
ON core.current_entity.tenant_id = b.tenant_id AND core.current_entity.item_key = b.item_key
WHEN MATCHED THEN UPDATE SET __columns__ = b.__columns__, _op_rank = b._op_rank, _removed = b._removed
WHEN NOT MATCHED THEN INSERT (__columns__, _op_rank, _removed) VALUES (b.__columns__, b._op_rank, b._removed)
