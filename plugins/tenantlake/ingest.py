"""One batch, end to end: a landed export -> verified -> typed rows -> staged -> published.

Batches are keyed by (tenant, entity, export id); running one again replaces what it published.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from tenantlake.contracts import ENTITIES
from tenantlake.formats.dynamodb_json import Decoded, Source, decode_file
from tenantlake.formats.manifest import (
    DataFile,
    Export,
    ExportError,
    check_tenant,
    read_data_file,
    read_export,
)
from tenantlake.formats.rows import QUARANTINE_SCHEMA, lake_schema
from tenantlake.lake import BatchKey, Commit, StagedWriter, publish
from tenantlake.registry import Tenant
from tenantlake.storage import Store


@dataclass
class BatchResult:
    tenant_id: str
    entity: str
    export_id: str
    kind: str
    export_date: str
    items: int  # as the manifest lists them
    rows: int  # published to raw/
    quarantined: int
    files: int
    seconds: float
    commit_key: str

    def line(self) -> str:
        return (f"{self.tenant_id} {self.entity} {self.kind.split('_')[0].lower()} {self.export_id}: "
                f"{self.items} items -> {self.rows} rows, {self.quarantined} quarantined "
                f"({self.files} file{'s' * (self.files != 1)}, {self.seconds:.2f}s)")


def _decode_one(landing: Store, f: DataFile, entity_name: str | None, src: Source) -> Decoded:
    text = read_data_file(landing, f)
    decoded = decode_file(text, ENTITIES.get(entity_name), src)
    if decoded.lines != f.item_count:
        raise ExportError(f"{f.key}: {decoded.lines} item lines, but the manifest lists {f.item_count}")
    return decoded


def bounded_map(pool: Executor | None, fn: Callable, args: Iterable[tuple], ahead: int) -> Iterator:
    """fn(*a) for each a, in order, with at most `ahead` results in flight, so a fast pool never
    piles up decoded files faster than they are written."""
    if pool is None:
        for a in args:
            yield fn(*a)
        return
    pending = []
    for a in args:
        pending.append(pool.submit(fn, *a))
        if len(pending) >= ahead:
            yield pending.pop(0).result()
    for p in pending:
        yield p.result()


def ingest_export(landing: Store, summary_key: str, lake: Store, *, tenant_id: str, entity: str,
                  tenant: Tenant | None, run_id: str, workers: int = 1) -> BatchResult:
    started = time.perf_counter()
    export: Export = read_export(landing, summary_key)
    if tenant is not None:
        check_tenant(export, tenant, entity)
    batch = BatchKey(tenant_id, entity, export.export_id, export.export_date)
    schema = lake_schema(ENTITIES.get(entity))
    writer = StagedWriter(lake, batch.staging_prefix(run_id), schema)
    quarantined, lo, hi = [], None, None
    pool = ProcessPoolExecutor(workers) if workers > 1 and len(export.files) > 1 else None
    try:
        args = ((landing, f, entity, Source(tenant_id, export.export_id, f.key, export.kind,
                                            export.export_time_us, export.view)) for f in export.files)
        for decoded in bounded_map(pool, _decode_one, args, ahead=2 * workers):
            writer.write(decoded.rows)
            if decoded.quarantine.num_rows:
                quarantined.append(decoded.quarantine)
            if decoded.rows.num_rows:
                mm = pc.min_max(decoded.rows["_event_ts"].cast(pa.int64()))
                lo = min(lo, mm["min"].as_py()) if lo is not None else mm["min"].as_py()
                hi = max(hi, mm["max"].as_py()) if hi is not None else mm["max"].as_py()
    except BaseException:
        lake.delete_prefix(batch.staging_prefix(run_id))  # nothing half-written stays behind
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    staged = writer.close()
    quarantine = pa.concat_tables(quarantined) if quarantined else QUARANTINE_SCHEMA.empty_table()
    rows = sum(f["rows"] for f in staged)
    commit = Commit(tenant_id, entity, export.export_id, export.export_date, export.kind, summary_key,
                    rows, quarantine.num_rows, min_event_ts=lo, max_event_ts=hi)
    publish(lake, batch, commit, staged, quarantine)
    lake.delete_prefix(batch.staging_prefix(run_id))
    return BatchResult(tenant_id, entity, export.export_id, export.kind, export.export_date,
                       export.item_count, rows, quarantine.num_rows, len(staged),
                       time.perf_counter() - started, batch.commit_key)
