"""One batch, end to end: a landed export -> verified -> typed rows -> staged -> published.

Batches are keyed by (tenant, entity, export id); running one again replaces what it published.
Data files are decoded in parallel processes, each streaming its file in slices into its own
Parquet part, so memory is bounded by the slice size however large the export grows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from tenantlake.contracts import ENTITIES
from tenantlake.formats.dynamodb_json import Source, decode_file
from tenantlake.formats.manifest import (
    DataFile,
    Export,
    ExportError,
    check_tenant,
    read_export,
    stream_slices,
)
from tenantlake.formats.rows import QUARANTINE_SCHEMA, lake_schema
from tenantlake.lake import BatchKey, Commit, PartWriter, publish
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


@dataclass
class StagedFile:
    path: str | None  # a local Parquet part, or None when the file held no publishable row
    rows: int
    quarantine: pa.Table
    min_ts: int | None
    max_ts: int | None


def stage_data_file(landing: Store, f: DataFile, entity_name: str | None, src: Source, out: str,
                    threads: bool = True) -> StagedFile:
    """Decode one data file into a local Parquet part; checks its MD5, gzip and line count."""
    entity = ENTITIES.get(entity_name)
    part = PartWriter(out, lake_schema(entity))
    lines, quarantined, lo, hi = 0, [], None, None
    for first_line, text in stream_slices(landing, f):
        decoded = decode_file(text, entity, src, threads, first_line)
        lines += decoded.lines
        part.write(decoded.rows)
        if decoded.quarantine.num_rows:
            quarantined.append(decoded.quarantine)
        if decoded.rows.num_rows:
            mm = pc.min_max(decoded.rows["_event_ts"].cast(pa.int64()))
            lo = min(x for x in (lo, mm["min"].as_py()) if x is not None)
            hi = max(x for x in (hi, mm["max"].as_py()) if x is not None)
    path = part.close()
    if lines != f.item_count:
        raise ExportError(f"{f.key}: {lines} item lines, but the manifest lists {f.item_count}")
    quarantine = pa.concat_tables(quarantined) if quarantined else QUARANTINE_SCHEMA.empty_table()
    return StagedFile(path, part.rows, quarantine, lo, hi)


def bounded_map(pool: Executor | None, fn: Callable, args: Iterable[tuple], ahead: int) -> Iterator:
    """fn(*a) for each a, in order, with at most `ahead` calls in flight."""
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
    staging = batch.staging_prefix(run_id)
    local = tempfile.mkdtemp(prefix="tenantlake-")
    pool = ProcessPoolExecutor(workers) if workers > 1 and len(export.files) > 1 else None
    staged, quarantined, lo, hi = [], [], [], []
    try:
        # Worker processes parse on one thread each: the processes already fill the cores.
        args = ((landing, f, entity, Source(tenant_id, export.export_id, f.key, export.kind,
                                            export.export_time_us, export.view),
                 os.path.join(local, f"{i:05d}.parquet"), pool is None)
                for i, f in enumerate(export.files))
        for part in bounded_map(pool, stage_data_file, args, ahead=workers + 1):
            if part.path is not None:
                key = f"{staging}/part-{len(staged):05d}.parquet"
                size = os.path.getsize(part.path)
                lake.put_file(key, part.path)
                staged.append({"key": key, "rows": part.rows, "bytes": size})
                lo.append(part.min_ts)
                hi.append(part.max_ts)
            if part.quarantine.num_rows:
                quarantined.append(part.quarantine)
    except BaseException:
        lake.delete_prefix(staging)  # nothing half-written stays behind
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        shutil.rmtree(local, ignore_errors=True)
    quarantine = pa.concat_tables(quarantined) if quarantined else QUARANTINE_SCHEMA.empty_table()
    rows = sum(f["rows"] for f in staged)
    commit = Commit(tenant_id, entity, export.export_id, export.export_date, export.kind, summary_key,
                    rows, quarantine.num_rows, min_event_ts=min(lo, default=None),
                    max_event_ts=max(hi, default=None))
    publish(lake, batch, commit, staged, quarantine)
    lake.delete_prefix(staging)
    return BatchResult(tenant_id, entity, export.export_id, export.kind, export.export_date,
                       export.item_count, rows, quarantine.num_rows, len(staged),
                       time.perf_counter() - started, batch.commit_key)
