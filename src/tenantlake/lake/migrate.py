"""From the former hive-partitioned lake (commit markers under raw/<entity>/tenant_id=<id>/_commits/)
to the Iceberg tables, batch by batch, through the same publication as new data.

Each committed batch's files become one StagedBatch (raw as they were, protected made from them,
its quarantine file as quarantine rows), so a migration interrupted half-way continues where it
stopped: batches already in the Iceberg tables are recognised and skipped. Only committed batches
move: files without a marker were never visible and stay behind.

`_extra` changed form: the former lake kept undeclared attributes as plain JSON of their decoded
values (numbers as text, sets as lists), the Iceberg lake keeps them as DynamoDB JSON. The former
is rewritten into the latter by JSON type (text -> S, object -> M, array -> L, true/false -> BOOL,
null -> NULL): numbers and sets come back as S and L, which is all the old form still knew.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tenantlake.contracts import ENTITIES
from tenantlake.formats.rows import lake_schema
from tenantlake.lake.catalog import QUARANTINE_LAKE_SCHEMA, Lake
from tenantlake.lake.files import split_by_day
from tenantlake.lake.hive import BatchKey, commits
from tenantlake.lake.publish import Publication, StagedBatch
from tenantlake.lake.read import read
from tenantlake.privacy import protect
from tenantlake.storage import Store


@dataclass
class Migrated:
    batches: int = 0
    replayed: int = 0
    per_table: dict[tuple[str, str], dict] = field(default_factory=dict)  # (tenant, entity) -> figures
    mismatches: list[str] = field(default_factory=list)


def typed(value) -> dict:
    """A decoded JSON value of the former `_extra` as a DynamoDB attribute value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, dict):
        return {"M": {k: typed(v) for k, v in value.items()}}
    if isinstance(value, list):
        return {"L": [typed(v) for v in value]}
    if isinstance(value, int | float):
        return {"N": str(value)}
    return {"S": str(value)}


def convert_extra(column: pa.ChunkedArray) -> pa.Array:
    out = []
    for text in column.to_pylist():
        if text is None:
            out.append(None)
            continue
        doc = orjson.loads(text)
        out.append(orjson.dumps({k: typed(v) for k, v in doc.items()}, option=orjson.OPT_SORT_KEYS).decode())
    return pa.array(out, pa.string())


def _fit(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A former file's rows in today's layout (columns added since are null)."""
    if "_extra" in table.column_names:
        table = table.set_column(table.column_names.index("_extra"), "_extra", convert_extra(table["_extra"]))
    n = table.num_rows
    return pa.table({f.name: table[f.name] if f.name in table.column_names else pa.nulls(n, f.type)
                     for f in schema}).cast(schema)


def _figures(table: pa.Table | None, money: list[str]) -> dict:
    if table is None:
        return {"rows": 0, **{m: "0" for m in money}}
    return {"rows": table.num_rows, **{m: str(pc.sum(table[m]).as_py() or 0) for m in money}}


def migrate(old: Store, lake: Lake, key_for, run_id: str = "migrate", entities=None) -> Migrated:
    """Publish every committed batch of the former lake into the Iceberg tables, then check rows
    and money sums per tenant and entity against the former lake."""
    out = Migrated()
    workdir = tempfile.mkdtemp(prefix="tenantlake-migrate-")
    for entity in entities or ENTITIES:
        contract = ENTITIES.get(entity)
        schema = lake_schema(contract)
        money = [f.name for f in schema if pa.types.is_decimal(f.type)]
        expected: dict[str, list[pa.Table]] = defaultdict(list)
        publication = Publication(lake, entity, run_id, workdir)
        for c in commits(old, entity):
            tables = [_fit(pq.read_table(io.BytesIO(old.get(f["key"]))), schema) for f in c.files]
            expected[c.tenant_id] += tables
            raw_parts, protected_parts = [], []
            for n, table in enumerate(tables):
                path = os.path.join(workdir, f"{c.tenant_id}-{c.export_id}-{n}.parquet")
                pq.write_table(table, path, compression="snappy")
                for day_part in split_by_day(path):
                    raw_parts.append(day_part)
                    if contract is not None:
                        pq.write_table(protect(pq.read_table(day_part), contract, key_for), day_part + ".p.parquet")
                        protected_parts.append(day_part + ".p.parquet")
            quarantine = None
            qkey = BatchKey(c.tenant_id, entity, c.export_id, c.export_date).quarantine_key
            if c.quarantined and old.exists(qkey):
                q = pq.read_table(io.BytesIO(old.get(qkey)))
                quarantine = pa.table({f.name: q[f.name] if f.name in q.column_names else pa.nulls(q.num_rows, f.type)
                                       for f in QUARANTINE_LAKE_SCHEMA}).cast(QUARANTINE_LAKE_SCHEMA)
            publication.add(StagedBatch(c.tenant_id, entity, c.export_id, c.kind, c.source, c.rows + c.quarantined,
                                        c.max_event_ts or 0, raw_parts, protected_parts, quarantine, c.rows,
                                        min_event_ts=c.min_event_ts, max_event_ts=c.max_event_ts))
        if not publication.batches:
            continue
        done = publication.commit()
        out.batches += len(done.published)
        out.replayed += len(done.replayed)
        for tenant_id, tables in expected.items():
            want = _figures(pa.concat_tables(tables), money)
            got = _figures(read(lake, "raw", entity, tenant_id), money)
            out.per_table[(tenant_id, entity)] = got
            if want != got:
                out.mismatches.append(f"{tenant_id} {entity}: the former lake holds {want}, the Iceberg lake {got}")
    return out
