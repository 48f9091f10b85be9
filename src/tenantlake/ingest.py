"""One batch, end to end: landed data -> verified -> typed rows -> staged -> published.

A batch is an export (full or incremental; DynamoDB JSON or ION) or one landed stream file, keyed
by (tenant, entity, export id); running it again replaces what it published. An export's data
files are decoded in parallel processes, each streaming its file in slices into its own Parquet
part, so memory is bounded by the slice size however large the export grows.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tenantlake import quality
from tenantlake.contracts import ENTITIES
from tenantlake.formats.dynamodb_json import Decoded, Source, decode_file
from tenantlake.formats.ion import decode_ion
from tenantlake.formats.manifest import DataFile, ExportError, check_tenant, read_export, stream_slices
from tenantlake.formats.rows import QUARANTINE_SCHEMA, lake_schema
from tenantlake.formats.streams import decode_stream
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
    items: int  # as the manifest lists them (stream files: records read)
    rows: int  # published to raw/
    quarantined: int
    files: int
    seconds: float
    commit_key: str
    export_time_us: int  # full: exportTime; incremental: exportToTime; stream: its newest record

    def line(self) -> str:
        return (f"{self.tenant_id} {self.entity} {self.kind.split('_')[0].lower()} {self.export_id}: "
                f"{self.items} items -> {self.rows} rows, {self.quarantined} quarantined "
                f"({self.files} file{'s' * (self.files != 1)}, {self.seconds:.2f}s)")


@dataclass
class StagedFile:
    path: str | None  # a local Parquet part, or None when nothing publishable was in it
    rows: int
    quarantine: pa.Table
    min_ts: int | None
    max_ts: int | None


class _Stager:
    """Collects decoded slices into one local Parquet part."""

    def __init__(self, out: str, entity_name: str | None):
        self.part = PartWriter(out, lake_schema(ENTITIES.get(entity_name)))
        self.lines, self.quarantined, self.lo, self.hi = 0, [], None, None

    def add(self, decoded: Decoded) -> None:
        self.lines += decoded.lines
        self.part.write(decoded.rows)
        if decoded.quarantine.num_rows:
            self.quarantined.append(decoded.quarantine)
        if decoded.rows.num_rows:
            mm = pc.min_max(decoded.rows["_event_ts"].cast(pa.int64()))
            self.lo = min(x for x in (self.lo, mm["min"].as_py()) if x is not None)
            self.hi = max(x for x in (self.hi, mm["max"].as_py()) if x is not None)

    def done(self) -> StagedFile:
        q = pa.concat_tables(self.quarantined) if self.quarantined else QUARANTINE_SCHEMA.empty_table()
        return StagedFile(self.part.close(), self.part.rows, q, self.lo, self.hi)


def stage_data_file(landing: Store, f: DataFile, entity_name: str | None, src: Source, out: str,
                    fmt: str = "DYNAMODB_JSON", threads: bool = True) -> StagedFile:
    """Decode one export data file into a local Parquet part; checks MD5, gzip and line count."""
    entity = ENTITIES.get(entity_name)
    stager = _Stager(out, entity_name)
    for first_line, text in stream_slices(landing, f):
        if fmt == "ION":
            stager.add(decode_ion(text, entity, src, first_line))
        else:
            stager.add(decode_file(text, entity, src, threads, first_line))
    staged = stager.done()
    if stager.lines != f.item_count:
        raise ExportError(f"{f.key}: {stager.lines} item lines, but the manifest lists {f.item_count}")
    return staged


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


def _audit(lake: Store, batch: BatchKey, kind: str, parts: list[StagedFile], export_time_us: int,
           run_id: str) -> tuple[list[StagedFile], pa.Table | None, dict]:
    """Run the entity's suite over the staged parts. Rows failing a `quarantine` expectation are
    cut from their part and returned as quarantine rows; any `fail` stops the batch."""
    paths = [p.path for p in parts if p.path]
    rows = sum(p.rows for p in parts)
    params = quality.params_for(batch.tenant_id, rows, export_time_us)
    outcome = quality.audit(batch.entity, paths, params, kind, published=quality.published_ids(lake, batch.tenant_id))
    lake.put(f"_quality/results/{batch.entity}/tenant_id={batch.tenant_id}/{batch.export_id}.json",
             orjson.dumps({"run_id": run_id, "batch": asdict(batch), "failed": outcome.failed,
                           "warned": outcome.warned, "quarantined": len(outcome.quarantined_rows),
                           "result": outcome.result}, default=str))
    if outcome.failed:
        raise quality.QualityError(f"{batch.entity} batch {batch.export_id} of {batch.tenant_id} failed its audit: "
                                   + "; ".join(outcome.failed))
    # Only what decides the published data goes in the commit marker: warnings can depend on
    # what else was published first (a referential check), so they stay in the audit results.
    summary = {"quarantined": len(outcome.quarantined_rows)}
    if not outcome.quarantined_rows:
        return parts, None, summary
    kept, aside, offset = [], [], 0
    for part in parts:
        if part.path is None:
            kept.append(part)
            continue
        table = pq.read_table(part.path)
        bad = sorted(r - offset for r in outcome.quarantined_rows if offset <= r < offset + table.num_rows)
        if bad:
            aside.append(_audit_quarantine(table.take(bad), [outcome.quarantined_rows[offset + i] for i in bad]))
            keep = np.ones(table.num_rows, dtype=bool)
            keep[bad] = False
            table = table.filter(pa.array(keep))
            pq.write_table(table, part.path, compression="snappy")
        offset += part.rows
        kept.append(StagedFile(part.path if table.num_rows else None, table.num_rows, part.quarantine,
                               part.min_ts, part.max_ts))
    return kept, pa.concat_tables(aside), summary


def _audit_quarantine(rows: pa.Table, reasons: list[str]) -> pa.Table:
    """Rows the audit set aside, in the quarantine layout: the whole row as JSON in _raw."""
    records = rows.to_pylist()
    return pa.Table.from_pydict({
        "tenant_id": rows["tenant_id"], "_export_id": rows["_export_id"], "_source_file": rows["_source_file"],
        "_line": rows["_line"], "_reason": reasons,
        "_detail": [f"failed {r} (quality suite)" for r in reasons],
        "_raw": [orjson.dumps(r, default=str) for r in records],
    }, schema=QUARANTINE_SCHEMA)


def _publish(lake: Store, batch: BatchKey, kind: str, source: str, parts: Iterable[StagedFile],
             run_id: str, items: int, started: float, export_time_us: int, audit: bool) -> BatchResult:
    """Stage the parts, audit them, then publish them with their quarantine under one marker."""
    staging = batch.staging_prefix(run_id)
    parts = list(parts)  # decode every file first: a batch is audited and published whole
    audited, summary = None, {}
    if audit:
        parts, audited, summary = _audit(lake, batch, kind, parts, export_time_us, run_id)
    staged, quarantined, lo, hi = [], [audited] if audited is not None else [], [], []
    try:
        for part in parts:
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
    quarantine = pa.concat_tables(quarantined) if quarantined else QUARANTINE_SCHEMA.empty_table()
    rows = sum(f["rows"] for f in staged)
    commit = Commit(batch.tenant_id, batch.entity, batch.export_id, batch.export_date, kind, source,
                    rows, quarantine.num_rows, min_event_ts=min(lo, default=None),
                    max_event_ts=max(hi, default=None), quality=summary)
    publish(lake, batch, commit, staged, quarantine)
    lake.delete_prefix(staging)
    return BatchResult(batch.tenant_id, batch.entity, batch.export_id, kind, batch.export_date, items,
                       rows, quarantine.num_rows, len(staged), time.perf_counter() - started,
                       batch.commit_key, export_time_us)


def ingest_export(landing: Store, summary_key: str, lake: Store, *, tenant_id: str, entity: str,
                  tenant: Tenant | None, run_id: str, workers: int = 1, audit: bool = True) -> BatchResult:
    started = time.perf_counter()
    export = read_export(landing, summary_key)
    if tenant is not None:
        check_tenant(export, tenant, entity)
    batch = BatchKey(tenant_id, entity, export.export_id, export.export_date)
    local = tempfile.mkdtemp(prefix="tenantlake-")
    pool = ProcessPoolExecutor(workers) if workers > 1 and len(export.files) > 1 else None
    try:
        # Worker processes parse on one thread each: the processes already fill the cores.
        args = ((landing, f, entity, Source(tenant_id, export.export_id, f.key, export.kind,
                                            export.export_time_us, export.view),
                 os.path.join(local, f"{i:05d}.parquet"), export.format, pool is None)
                for i, f in enumerate(export.files))
        parts = bounded_map(pool, stage_data_file, args, ahead=workers + 1)
        return _publish(lake, batch, export.kind, summary_key, parts, run_id, export.item_count, started,
                        export.export_time_us, audit and entity in ENTITIES)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        shutil.rmtree(local, ignore_errors=True)


def stream_batch_key(tenant_id: str, entity: str, key: str) -> BatchKey:
    """A landed stream file's batch: its id derives from its key, its day from its path
    (.../YYYY/MM/DD/HH/<file>, the Firehose and Pipes default prefix)."""
    parts = key.split("/")
    day = "-".join(parts[-5:-2]) if len(parts) >= 5 and all(p.isdigit() for p in parts[-5:-2]) else "unknown"
    return BatchKey(tenant_id, entity, "stream-" + hashlib.sha256(key.encode()).hexdigest()[:20], day)


def ingest_stream_file(landing: Store, key: str, lake: Store, *, tenant_id: str, entity: str,
                       envelope: str, run_id: str, audit: bool = True) -> BatchResult:
    started = time.perf_counter()
    batch = stream_batch_key(tenant_id, entity, key)
    if not landing.exists(key):
        raise ExportError(f"{key}: stream file not found")
    body = landing.get(key)
    try:
        text = zlib.decompress(body, wbits=31) if body[:2] == b"\x1f\x8b" else body  # gzip or plain
        decoded = decode_stream(text, ENTITIES.get(entity), Source(tenant_id, batch.export_id, key,
                                                                   "STREAM", 0), envelope)
    except (zlib.error, ValueError, UnicodeDecodeError) as e:
        raise ExportError(f"{key}: not a readable {envelope} stream file ({str(e)[:120]})") from None
    local = tempfile.mkdtemp(prefix="tenantlake-")
    try:
        stager = _Stager(os.path.join(local, "part.parquet"), entity)
        stager.add(decoded)
        staged = stager.done()
        # a stream file has no export time: its newest record bounds the audit's "not in the future"
        return _publish(lake, batch, f"STREAM_{envelope.upper()}", key, [staged], run_id,
                        decoded.lines, started, staged.max_ts or 0, audit and entity in ENTITIES)
    finally:
        shutil.rmtree(local, ignore_errors=True)
