"""The usual way, for the ratios the benchmarks print: DuckDB read_json of every landed data file,
then one latest-wins MERGE per entity. No manifest or MD5 check, no audit, no quarantine, no lake,
no history, no protected projection: what tenantlake's figures are measured against."""

from __future__ import annotations

import os
import time
from pathlib import Path

ENTITIES = ("Consumer", "Counselor", "Application", "Income", "Expense", "Debt", "Plan", "Payment")


def bare_duckdb(landing: Path, workdir: Path) -> float:
    """read_json of every landed data file, then one latest-wins MERGE per entity: no manifest or
    MD5 check, no audit, no lake, no history: the usual way, for the ratio."""
    import duckdb

    def files(entity: str, pattern: str) -> list[str]:
        return [str(p) for p in sorted(landing.glob(f"tenant=*/table={entity}/AWSDynamoDB/{pattern}"))
                if os.path.getsize(p) > 20]  # an empty partition's gzip holds no line

    started = time.perf_counter()
    con = duckdb.connect(str(workdir / "bare.duckdb"))
    for entity in ENTITIES:
        full, incremental = files(entity, "*/data/*.json.gz"), files(entity, "data/*.json.gz")
        parts = []
        # Explicit JSON columns: schema inference over thousands of small files runs DuckDB out of
        # memory (seen at 1,000 tenants); read in chunks of files for the same reason.
        for chunk in (full[i:i + 2000] for i in range(0, len(full), 2000)):
            parts.append(f"SELECT regexp_extract(filename, 'tenant=([^/]+)', 1) AS tenant, "
                         "json_extract_string(Item, '$.id.S') AS id, 0 AS ts, Item AS item "
                         f"FROM read_json({chunk!r}, filename = true, format = 'newline_delimited', "
                         "columns = {'Item': 'JSON'})")
        for chunk in (incremental[i:i + 2000] for i in range(0, len(incremental), 2000)):
            parts.append(f"SELECT regexp_extract(filename, 'tenant=([^/]+)', 1) AS tenant, "
                         "json_extract_string(Keys, '$.id.S') AS id, "
                         "CAST(json_extract_string(Metadata, '$.WriteTimestampMicros.N') AS BIGINT) AS ts, "
                         f"NewImage AS item FROM read_json({chunk!r}, filename = true, format = 'newline_delimited', "
                         "columns = {'Keys': 'JSON', 'NewImage': 'JSON', 'OldImage': 'JSON', 'Metadata': 'JSON'})")
        if not parts:
            continue
        name = entity.lower()
        con.execute(f"CREATE TABLE {name} (tenant VARCHAR, id VARCHAR, ts BIGINT, item JSON)")
        con.execute(f"CREATE TEMP TABLE new_{name} (tenant VARCHAR, id VARCHAR, ts BIGINT, item JSON)")
        for part in parts:
            con.execute(f"INSERT INTO new_{name} {part}")
        con.execute(f"""
            MERGE INTO {name} AS t USING (
                SELECT * FROM new_{name} QUALIFY ROW_NUMBER() OVER (PARTITION BY tenant, id ORDER BY ts DESC) = 1
            ) AS s ON t.tenant = s.tenant AND t.id = s.id
            WHEN MATCHED AND s.ts >= t.ts THEN UPDATE SET ts = s.ts, item = s.item
            WHEN NOT MATCHED THEN INSERT VALUES (s.tenant, s.id, s.ts, s.item)""")
    con.close()
    return time.perf_counter() - started
