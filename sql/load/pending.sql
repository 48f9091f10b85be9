-- What this load changes, for the refresh: every key in the accepted batches, with the consumer
-- the batch names and the one current knew before (a debt moved between consumers touches both).
-- Runs before the MERGE, while current still holds the old consumer.
INSERT INTO ops.refresh_pending (source, tenant_id, item_key, consumer_key, since)
SELECT :entity, s.tenant_id, s.item_key, s.consumer_key, CAST(NULL AS DATE)
FROM stage.entity AS s
UNION
SELECT :entity, c.tenant_id, c.item_key, c.consumer_key, CAST(NULL AS DATE)
FROM core.current_entity AS c
WHERE EXISTS (SELECT 1 FROM stage.entity AS s WHERE s.tenant_id = c.tenant_id AND s.item_key = c.item_key)
