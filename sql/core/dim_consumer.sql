-- Consumer, SCD type 2, pseudonymous: one row per version, valid_from .. valid_to (exclusive).
-- No clear PII: a keyed-HMAC pseudonym (a key per tenant), the age band at the version's time and
-- the first three digits of the postal code.
CREATE TABLE core.dim_consumer DISTKEY (consumer_key) SORTKEY (tenant_id, consumer_key, valid_from) AS
WITH versions AS (
    SELECT h.*,
           ROW_NUMBER() OVER (PARTITION BY h.tenant_id, h.id, h.ddb_version, h._op_rank > 0 AND h._op = 'remove'
                              ORDER BY h._event_ts, h._op_rank, NVL(h._sequence, ''), h._line) AS first_seen
    FROM core.history_consumer AS h
), kept AS (
    SELECT * FROM versions WHERE first_seen = 1
)
SELECT f_pseudonym(tenant_id, id) AS consumer_key,
       tenant_id,
       ddb_version AS version,
       status,
       state,
       LEFT(postal_code, 3) AS postal_prefix,
       CASE WHEN date_of_birth IS NULL THEN 'unknown'
            WHEN DATEDIFF(year, date_of_birth, CAST(_event_ts AS DATE)) < 25 THEN '18-24'
            WHEN DATEDIFF(year, date_of_birth, CAST(_event_ts AS DATE)) < 35 THEN '25-34'
            WHEN DATEDIFF(year, date_of_birth, CAST(_event_ts AS DATE)) < 45 THEN '35-44'
            WHEN DATEDIFF(year, date_of_birth, CAST(_event_ts AS DATE)) < 55 THEN '45-54'
            WHEN DATEDIFF(year, date_of_birth, CAST(_event_ts AS DATE)) < 65 THEN '55-64'
            ELSE '65+' END AS age_band,
       household_size,
       counselor_id,
       _event_ts AS valid_from,
       LEAD(_event_ts) OVER (PARTITION BY tenant_id, id
                             ORDER BY _event_ts, _op_rank, NVL(_sequence, ''), _line) AS valid_to,
       CASE WHEN _op = 'remove' OR NVL(is_deleted, FALSE) THEN TRUE ELSE FALSE END AS is_deleted
FROM kept
