-- Consumer, SCD type 2, pseudonymous: one row per version, valid_from .. valid_to (exclusive). Built
-- from protected history only: the keyed pseudonym, the age band at the version's own event time
-- and the postal prefix were made in the lake (tenantlake.privacy); nothing here sees a clear value.
-- The same version loaded twice (a re-snapshot of an unchanged item) is one version.
WITH versions AS (
    SELECT h.*,
           ROW_NUMBER() OVER (PARTITION BY h.tenant_id, h.consumer_key, h.ddb_version,
                                           CASE WHEN h._op = 'remove' THEN 1 ELSE 0 END
                              ORDER BY h._event_ts, h._op_rank, NVL(h._sequence, ''), h._source_file, h._line,
                                       h._export_id) AS first_seen
    FROM core.history_consumer AS h
), kept AS (
    SELECT * FROM versions WHERE first_seen = 1
)
SELECT consumer_key,
       tenant_id,
       ddb_version AS version,
       status,
       state,
       postal_prefix,
       age_band,
       household_size,
       counselor_id,
       _event_ts AS valid_from,
       LEAD(_event_ts) OVER (PARTITION BY tenant_id, consumer_key
                             ORDER BY _event_ts, _op_rank, NVL(_sequence, ''), _source_file, _line,
                                      _export_id) AS valid_to,
       CASE WHEN _op = 'remove' OR NVL(is_deleted, FALSE) THEN TRUE ELSE FALSE END AS is_deleted
FROM kept
