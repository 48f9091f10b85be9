"""Batches, end to end: landed data -> verified -> typed rows -> audited -> published.

A batch is an export (full or incremental; DynamoDB JSON or ION) or one landed stream file, keyed
by (tenant, entity, export id). An Ingest session handles many batches of one entity (a task's
shard of tenants) and publishes them together:

  stage     verify the manifests and decode each data file into a local Parquet part and its
            protected projection (in parallel processes for multi-file exports, streaming slices,
            so memory stays flat)
  finish    per batch: duplicate keys set aside, then the audit, the session's batches a few at a
            time (tenantlake.quality.audit_many), rows of erased consumers dropped, parts cut at UTC
            day boundaries (Iceberg partitions by day); a part whose rows changed is projected again
  publish   one Iceberg commit per zone for every batch (tenantlake.lake.publish)

Accounting never loses a row: items = rows published + rows quarantined + rows of erased
consumers dropped.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.expressions import And, EqualTo, In

from tenantlake import quality
from tenantlake.contracts import ENTITIES
from tenantlake.formats.drift import merge_drift
from tenantlake.formats.duplicates import duplicated, resolve_duplicates, row_digests
from tenantlake.formats.dynamodb_json import WRONG_EXPORT_TYPE, Decoded, Source, decode_file
from tenantlake.formats.ion import decode_ion, ion_item
from tenantlake.formats.manifest import DataFile, ExportError, check_tenant, read_export, stream_slices
from tenantlake.formats.rows import EPOCH, QUARANTINE_SCHEMA, lake_schema
from tenantlake.formats.streams import (
    UnreadableFile,
    decode_stream,
    readable_text,
    sent_records,
    stream_text,
    unreadable_file,
)
from tenantlake.lake.catalog import BATCH_LOG, QUARANTINE_LAKE_SCHEMA, Lake
from tenantlake.lake.files import day_of, split_table_by_day
from tenantlake.lake.hive import PartWriter
from tenantlake.lake.publish import BatchHeader, Failed, Publication, Published, StagedBatch
from tenantlake.lake.read import live_keys, published_ids, scan
from tenantlake.privacy import protect, protected_schema, pseudonymise
from tenantlake.processes import process_pool
from tenantlake.registry import Tenant
from tenantlake.storage import Store

log = logging.getLogger(__name__)

KeyFor = Callable[[str], bytes]  # tenant id -> its pseudonym key
LARGE_BATCH = 100_000  # rows past which duplicate keys are looked for by DuckDB (Ingest._ids_unique)
STREAM_CLOCK_SKEW = timedelta(days=1)  # a stream record stamped later than this after it is read is refused
AUDIT_ROWS = 250_000  # rows audited at a time (Ingest._audit): many tiny batches still share one pass


@dataclass
class BatchResult:
    """What became of one batch, small enough for XCom and the run summary."""

    tenant_id: str
    entity: str
    export_id: str
    kind: str
    items: int  # as the manifest lists them (stream files: records read)
    rows: int  # published to raw/
    quarantined: int
    erased: int
    files: int
    seconds: float
    export_time_us: int  # full: exportTime; incremental: exportToTime; stream: its newest record
    outcome: str = "published"  # published | replayed | failed | withheld (after a failed window)
    reason: str | None = None
    inferred_deletes: int = 0  # keys a full re-snapshot no longer holds, published as removes

    def line(self) -> str:
        what = f"{self.items} items -> {self.rows} rows, {self.quarantined} quarantined"
        if self.erased:
            what += f", {self.erased} of erased consumers dropped"
        if self.inferred_deletes:
            what += f", {self.inferred_deletes} deletes inferred from the snapshot"
        status = "" if self.outcome == "published" else f" [{self.outcome}{': ' + self.reason if self.reason else ''}]"
        return (f"{self.tenant_id} {self.entity} {self.kind.split('_')[0].lower()} {self.export_id}: {what} "
                f"({self.files} file{'s' * (self.files != 1)}, {self.seconds:.2f}s){status}")


@dataclass
class StagedFile:
    path: str | None  # a local Parquet part, or None when nothing publishable was in it
    rows: int
    quarantine: pa.Table
    min_ts: int | None
    max_ts: int | None
    drift: list = field(default_factory=list)
    # The part's protected projection, row for row, made where it was decoded (in parallel); None
    # once the part's rows change (duplicates set aside), and then made again when published.
    protected: str | None = None

    @property
    def one_day(self) -> bool:
        return self.min_ts is not None and day_of(self.min_ts) == day_of(self.max_ts)


@dataclass
class Staged(BatchHeader):
    """A decoded batch, not yet audited: local parts and the decoder's quarantine."""

    parts: list[StagedFile]
    started: float
    bytes_exported: int | None = None
    window_from_us: int | None = None  # an incremental export's window start
    landing: Store | None = None  # where its files are: rows set aside after decoding are read again

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)

    @property
    def set_aside(self) -> int:
        """Items set aside before the audit (by the decoder, or as duplicate keys)."""
        return sum(p.quarantine.num_rows for p in self.parts)


class _Stager:
    """Collects decoded slices into one local Parquet part, and with a tenant's pseudonym key,
    their protected projection into a second one."""

    def __init__(self, out: str, entity_name: str | None, key: bytes | None = None):
        self.entity = ENTITIES.get(entity_name)
        schema = lake_schema(self.entity)
        self.part = PartWriter(out, schema)
        self.key = key if self.entity is not None else None
        self.protected = PartWriter(f"{out}.protected.parquet", protected_schema(self.entity, schema)) \
            if self.key is not None else None
        self.lines, self.quarantined, self.drift, self.lo, self.hi = 0, [], [], None, None

    def add(self, decoded: Decoded) -> None:
        self.lines += decoded.lines
        self.part.write(decoded.rows)
        if self.protected is not None:
            self.protected.write(protect(decoded.rows, self.entity, lambda _: self.key))
        self.drift += getattr(decoded, "drift", None) or []
        if decoded.quarantine.num_rows:
            self.quarantined.append(decoded.quarantine)
        if decoded.rows.num_rows:
            mm = pc.min_max(decoded.rows["_event_ts"].cast(pa.int64()))
            self.lo = min(x for x in (self.lo, mm["min"].as_py()) if x is not None)
            self.hi = max(x for x in (self.hi, mm["max"].as_py()) if x is not None)

    def done(self) -> StagedFile:
        q = pa.concat_tables(self.quarantined) if self.quarantined else QUARANTINE_SCHEMA.empty_table()
        protected = self.protected.close() if self.protected is not None else None
        return StagedFile(self.part.close(), self.part.rows, q, self.lo, self.hi, self.drift, protected)


def stage_data_file(landing: Store, f: DataFile, entity_name: str | None, src: Source, out: str,
                    fmt: str = "DYNAMODB_JSON", threads: bool = True, key: bytes | None = None) -> StagedFile:
    """Decode one export data file into a local Parquet part (and with the tenant's pseudonym key,
    its protected projection); checks MD5, gzip and line count."""
    entity = ENTITIES.get(entity_name)
    stager = _Stager(out, entity_name, key)
    for piece in stream_slices(landing, f):
        if fmt == "ION":
            stager.add(decode_ion(piece.text, entity, src, piece.first_line))
        else:
            stager.add(decode_file(piece.text, entity, src, threads, piece.first_line, piece.line_ends))
    staged = stager.done()
    if stager.lines != f.item_count:
        raise ExportError(f"{f.key}: {stager.lines} item lines, but the manifest lists {f.item_count}")
    reasons = staged.quarantine["_reason"]
    wrong = pc.sum(pc.equal(reasons, WRONG_EXPORT_TYPE)).as_py() if len(reasons) else 0
    if wrong:  # the export is not what its manifest says: nothing of it is published, and it waits
        raise ExportError(f"{f.key}: {wrong} of {stager.lines} lines are not {src.kind} lines, as the manifest says "
                          f"(the export's type and its data disagree)")
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


def stream_batch_id(key: str) -> str:
    """A landed stream file's batch id: derived from its key, so the same file is the same batch."""
    return "stream-" + hashlib.sha256(key.encode()).hexdigest()[:20]


def _us(value: datetime) -> int:
    """Epoch microseconds, exactly (a float's timestamp() can be a microsecond off)."""
    return (value - EPOCH) // timedelta(microseconds=1)


def _quarantine_rows(decoder_rows: pa.Table, consumer: tuple[str, str] | None) -> pa.Table:
    """Quarantine rows in the lake's layout: whose item each is, read from its original line where
    it can be (erasure finds a consumer's quarantined items by these). `consumer` is the contract's
    consumer reference as (DynamoDB attribute, column): lines hold the one, audit rows the other."""
    item_ids, consumer_ids = [], []
    for raw in decoder_rows["_raw"].to_pylist():
        item = item_of(raw)
        item_ids.append(plain_string(item.get("id")))
        consumer_ids.append(next((plain_string(item[k]) for k in consumer if k in item), None) if consumer else None)
    now = datetime.now(UTC)
    return decoder_rows.append_column("_item_id", pa.array(item_ids, pa.string())).append_column(
        "_consumer_id", pa.array(consumer_ids, pa.string())).append_column(
        "_quarantined_at", pa.array([now] * decoder_rows.num_rows, pa.timestamp("us", tz="UTC"))).cast(
        QUARANTINE_LAKE_SCHEMA)


def item_of(raw: bytes | None) -> dict:
    """The item inside a quarantined line, as far as it can be read (any envelope, JSON or Ion)."""
    try:
        doc = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        return (ion_item(raw) or {}) if raw else {}
    if not isinstance(doc, dict):
        return {}
    for path in (("Item",), ("NewImage",), ("OldImage",), ("Keys",), ("dynamodb", "NewImage"),
                 ("dynamodb", "OldImage"), ("dynamodb", "Keys")):
        node = doc
        for step in path:
            node = node.get(step) if isinstance(node, dict) else None
        if isinstance(node, dict):
            return node
    return doc


def plain_string(av) -> str | None:
    """An id as a line holds it ({"S": "c-1"}, or {"N": "12"} for a numeric one) or as an audit row
    holds it ("c-1")."""
    if isinstance(av, dict):
        text = av.get("S", av.get("N"))
        return text if isinstance(text, str) else None
    return av if isinstance(av, str) else None


def _drop_erased_quarantine(q: pa.Table, tenant_id: str, erased: set[str], key_for: KeyFor,
                            consumer: tuple[str, str], found: set[str]) -> tuple[pa.Table, int]:
    """Quarantined lines whose item names an erased consumer as its consumer (`consumer`: the
    contract's reference as (attribute, column)), exactly: never a line that merely holds the same
    text in another attribute (a status value, a note) when it names its consumer plainly. A line
    that does not read as an item, or names its consumer in another form ({"SS": ["c-1"]}), is
    theirs when it holds their id as a whole JSON string, as erasure itself decides
    (lifecycle._Theirs). Their consumer ids are added to `found`."""
    from tenantlake.pseudonyms import pseudonym

    key = key_for(tenant_id)
    keep = []
    for raw in q["_raw"].to_pylist():
        item = item_of(raw)
        named = [plain_string(item[k]) for k in consumer if k in item]
        who = next((n for n in named if n is not None), None)
        if who is None and (not item or named):
            who = next((s for s in _json_strings(raw) if pseudonym(key, tenant_id, s) in erased), None)
        theirs = who is not None and pseudonym(key, tenant_id, who) in erased
        if theirs:
            found.add(who)
        keep.append(not theirs)
    return q.filter(pa.array(keep, pa.bool_())), keep.count(False)


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _json_strings(raw: bytes | None) -> set[str]:
    """Every whole JSON string a text holds, decoded, whether or not the text reads as JSON."""
    found = set()
    for m in _JSON_STRING.finditer(raw or b""):
        try:
            text = orjson.loads(m.group(0))
        except orjson.JSONDecodeError:
            continue
        found.add(text)
    return found


class Ingest:
    """Many batches of one entity, staged one by one and published together."""

    def __init__(self, lake: Lake, entity: str, run_id: str, key_for: KeyFor, *,
                 erased: dict[str, set[str]] | None = None, workers: int = 1, audit: bool = True,
                 scrub: Callable[[Store, str, str, set[str]], int] | None = None):
        """`scrub(landing, source, entity, consumer ids)` takes erased consumers' lines out of a
        landed export or stream file (tenantlake.lifecycle.scrub_landed: the caller hands it in, as
        the data path imports nothing of the lifecycle)."""
        self.lake, self.entity, self.run_id, self.key_for = lake, entity, run_id, key_for
        self.scrub = scrub
        self.contract = ENTITIES.get(entity)
        self.erased = erased or {}
        self._landed_erased: dict[tuple[str, str], tuple[Staged, set[str]]] = {}  # batch -> (batch, consumer ids)
        self.workers = workers
        self.audit = audit and self.contract is not None
        self.workdir = tempfile.mkdtemp(prefix="tenantlake-ingest-")
        self._batches = itertools.count()  # names each batch's local parts in workdir
        self._opening: threading.Thread | None = None
        self._duckdb = None  # opened for the first large batch
        self._snapshots: dict[str, Snapshot] = {}  # tenant -> its latest FULL export staged in this publish

    def close(self) -> None:
        self._opened()
        if self._duckdb is not None:
            self._duckdb.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _local_prefix(self) -> str:
        """Where a batch's local parts go (a folder per batch cost a tiny batch ~0.5 ms)."""
        return os.path.join(self.workdir, f"batch-{next(self._batches):07d}")

    def _open_tables(self) -> None:
        """Open the tables publish commits to (creating or evolving them) while the first batch is
        decoded: this process only waits then, and opening a new table costs ~40 ms. A failure is
        left for publish, which opens them again and reports it as it would."""
        if self._opening is None:
            tables = [("raw", self.entity), ("ops", BATCH_LOG)]
            tables += [("protected", self.entity)] if self.contract is not None else []
            self._opening = threading.Thread(target=_open_quietly, args=(self.lake, tables), daemon=True)
            self._opening.start()

    def _pseudonym_key(self, tenant_id: str) -> bytes | None:
        """What the stager projects a batch with; an entity with no contract has no protected zone."""
        return self.key_for(tenant_id) if self.contract is not None else None

    def _opened(self) -> None:
        if self._opening is not None:
            self._opening.join()

    def __enter__(self) -> Ingest:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- stage ---------------------------------------------------------------------------------

    def stage_export(self, landing: Store, summary_key: str, tenant_id: str, tenant: Tenant | None) -> Staged:
        started = time.perf_counter()
        self._open_tables()
        export = read_export(landing, summary_key)
        if tenant is not None:
            check_tenant(export, tenant, self.entity)
        local = self._local_prefix()
        pool = process_pool(self.workers, __name__) if self.workers > 1 and len(export.files) > 1 else None
        try:
            # Worker processes parse on one thread each: the processes already fill the cores.
            key = self._pseudonym_key(tenant_id)
            args = ((landing, f, self.entity, Source(tenant_id, export.export_id, f.key, export.kind,
                                                     export.export_time_us, export.view),
                     f"{local}-{i:05d}.parquet", export.format, pool is None, key)
                    for i, f in enumerate(export.files))
            parts = list(bounded_map(pool, stage_data_file, args, ahead=self.workers + 1))
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        return Staged(tenant_id, self.entity, export.export_id, export.kind, summary_key, export.item_count,
                      export.export_time_us, parts, started, export.billed_bytes, export.from_us, landing)

    def stage_stream(self, landing: Store, key: str, tenant_id: str, envelope: str,
                     tenant: Tenant | None = None) -> Staged:
        """One landed stream file; with the registry entry, records of another table or account
        are quarantined."""
        started = time.perf_counter()
        export_id = stream_batch_id(key)
        if not landing.exists(key):
            raise ExportError(f"{key}: stream file not found")
        body = landing.get(key)
        src = Source(tenant_id, export_id, key, "STREAM", 0)
        try:
            text = stream_text(body)
            decoded = decode_stream(text, self.contract, src, envelope,
                                    tenant.table_arn(self.entity) if tenant is not None else None,
                                    not_after_us=int((time.time() + STREAM_CLOCK_SKEW.total_seconds()) * 1e6))
        except UnreadableFile as e:
            problem = f"{key}: not a readable {envelope} stream file: {str(e)[:160]}"
            log.warning("%s: set aside whole in quarantine; the table's later files go on", problem)
            decoded = unreadable_file(self.contract, src, readable_text(body), problem)
        stager = _Stager(f"{self._local_prefix()}-part.parquet", self.entity, self._pseudonym_key(tenant_id))
        stager.add(decoded)
        part = stager.done()
        # a stream file has no export time: its newest record bounds the audit's "not in the future"
        return Staged(tenant_id, self.entity, export_id, f"STREAM_{envelope.upper()}", key, decoded.lines,
                      part.max_ts or 0, [part], started, landing=landing)

    # ---- finish and publish --------------------------------------------------------------------

    def publish(self, staged: list[Staged]) -> tuple[list[BatchResult], Published]:
        """Audit every staged batch at once, then publish the ones that passed in one commit per
        zone. `staged` is in each tenant's order: after a tenant's batch fails its audit, that
        tenant's later batches are withheld (windows must follow on without a gap; they are staged
        again next run)."""
        self._opened()
        publication = Publication(self.lake, self.entity, self.run_id, self.workdir)
        results: dict[tuple[str, str], BatchResult] = {}
        ids = [s.id for s in staged]
        twice = [s for n, s in enumerate(staged) if s.id in ids[:n]]
        staged = [s for s in staged if not any(s is t for t in twice)]  # the same export handed in twice
        for s in staged:
            if s.kind in ("FULL_EXPORT", "INCREMENTAL_EXPORT") and self.contract is not None \
                    and not self._ids_unique(s):
                _set_aside_duplicates(s)
        verdicts = self._audit(staged)
        fulls = {s.tenant_id for s in staged if s.kind == "FULL_EXPORT"}
        self._live = live_keys(self.lake, self.entity, fulls, {s.id for s in staged}) \
            if fulls and self.contract is not None else {}
        self._snapshots = {}  # those of earlier publishes are in the lake now
        blocked: set[str] = set()
        for s in staged:
            verdict = verdicts.get(s.id)
            if s.tenant_id in blocked:
                results[s.id] = self._result(s, 0, 0, 0, "withheld", "an earlier batch of the tenant failed")
                continue
            if verdict is not None and verdict.failed:
                reason = "failed its audit: " + "; ".join(verdict.failed)
                publication.fail(Failed(s.tenant_id, s.entity, s.export_id, s.kind, s.source, reason, s.items,
                                        _dumps(_quality_doc(verdict, self.run_id))))
                results[s.id] = self._result(s, 0, 0, 0, "failed", reason)
                blocked.add(s.tenant_id)
                continue
            batch = self._finish(s, verdict)
            publication.add(batch)
            results[s.id] = self._result(s, batch.rows, batch.quarantined, batch.erased)
            results[s.id].inferred_deletes = batch.inferred_deletes
        published = publication.commit()
        for bid in published.replayed:
            results[bid].outcome = "replayed"
        self._scrub_landing()
        out = [results[s.id] for s in staged]
        out += [self._result(s, 0, 0, 0, "replayed", "the same export twice in one run") for s in twice]
        return out, published

    def _scrub_landing(self) -> None:
        """An export (or stream file) that landed after a consumer's erasure and still carried them:
        ingest left their rows out of the lake, and the erasure covers landing too, so their lines
        leave the landed files as `tenantlake erase` takes them (manifests kept valid). A file that
        cannot be rewritten is said in the log; the batch is published either way."""
        for s, found in self._landed_erased.values() if self.scrub is not None else ():
            try:
                gone = self.scrub(s.landing, s.source, s.entity, found)
                log.info("%s %s: %d line(s) of erased consumers taken out of landed %s", s.tenant_id, s.entity, gone,
                         s.source)
            except Exception as e:  # noqa: BLE001 - the batch is published; the landing is retried by erase
                log.warning("%s %s: landed %s still holds lines of erased consumers (%s: %s); run "
                            "`tenantlake erase` for them again", s.tenant_id, s.entity, s.source, type(e).__name__, e)
        self._landed_erased.clear()

    def _ids_unique(self, s: Staged) -> bool:
        """Whether no key occurs twice in the batch (the usual case), from the ids alone: by Arrow's
        hash set, which needs no setup, or past LARGE_BATCH rows by DuckDB's parallel hash aggregate
        (2.4x faster at 1M rows; its connection, ~15 ms to open, is the session's)."""
        paths = [p.path for p in s.parts if p.path]
        if s.rows < LARGE_BATCH:
            ids = pa.concat_tables([pq.read_table(p, columns=["id"]) for p in paths])["id"].drop_null() \
                if paths else pa.array([], pa.string())
            return len(pc.unique(ids)) == len(ids)
        if self._duckdb is None:
            import duckdb

            self._duckdb = duckdb.connect()
        return self._duckdb.execute("SELECT count(id) = count(DISTINCT id) FROM read_parquet(?)", [paths]).fetchone()[0]

    def _result(self, s: Staged, rows: int, quarantined: int, erased: int, outcome: str = "published",
                reason: str | None = None) -> BatchResult:
        return BatchResult(s.tenant_id, s.entity, s.export_id, s.kind, s.items, rows, quarantined, erased,
                           sum(1 for p in s.parts if p.path), time.perf_counter() - s.started, s.export_time_us,
                           outcome, reason)

    def _audit(self, staged: list[Staged]) -> dict[tuple[str, str], quality.Audit]:
        if not self.audit:
            return {}
        tenants = {s.tenant_id for s in staged}
        ids: dict[tuple[str, str], set[str]] = {}

        def published(tenant_id: str, entity: str) -> set[str]:
            if (tenant_id, entity) not in ids:
                for t, found in published_ids(self.lake, entity, tenants).items():
                    ids[(t, entity)] = found
            return ids.get((tenant_id, entity), set())

        # Only the columns the suite reads, and batches a few at a time: a shard's rows are never all
        # in memory at once (each batch is audited on its own, so the verdicts are the same).
        columns = [c for c in lake_schema(self.contract).names if c in quality.columns_read(self.entity)]
        ref = self.contract.consumer_reference
        read = columns + ([ref.column] if ref and ref.column not in columns else [])
        verdicts: dict[tuple[str, str], quality.Audit] = {}
        for group in _groups(staged, AUDIT_ROWS):
            # Erased consumers' rows are left out of the audit (their values must not reach its
            # results); the row count the suite expects is what the export listed less what was
            # set aside and erased: a row the decoder lost without a reason would show here.
            batches, kept = [], {}
            for s in group:
                rows, kept[s.id] = self._without_erased(s.tenant_id, _read_parts(s, read), ref)
                batches.append(quality.AuditBatch(
                    s.id, s.tenant_id, s.kind, rows.select(columns),
                    quality.params_for(s.tenant_id, s.items - s.set_aside - (s.rows - rows.num_rows),
                                       s.export_time_us, s.window_from_us)))
            for batch_id, verdict in quality.audit_many(self.entity, batches, published).items():
                at = kept[batch_id]
                if at is not None:  # the audit's rows back to the batch's own positions
                    verdict.quarantined_rows = {int(at[i]): why for i, why in verdict.quarantined_rows.items()}
                verdicts[batch_id] = verdict
        return verdicts

    def _without_erased(self, tenant_id: str, rows: pa.Table, ref) -> tuple[pa.Table, np.ndarray | None]:
        """The rows of consumers not erased, and where they were (None: all of them)."""
        erased = self.erased.get(tenant_id)
        if not erased or ref is None or not rows.num_rows:
            return rows, None
        keys = pseudonymise(rows["tenant_id"], rows[ref.column].combine_chunks(), self.key_for)
        gone = pc.fill_null(pc.is_in(keys, pa.array(sorted(erased), pa.string())), False)
        if not pc.any(gone).as_py():
            return rows, None
        return rows.filter(pc.invert(gone)), np.flatnonzero(~np.asarray(gone))

    def _finish(self, s: Staged, verdict: quality.Audit | None) -> StagedBatch:
        """Quarantine what the audit set aside, drop erased consumers' rows, cut at days, protect."""
        aside = dict(verdict.quarantined_rows) if verdict is not None else {}
        quarantine = [p.quarantine for p in s.parts if p.quarantine.num_rows]
        raw_parts, protected_parts, offset, erased, rows, lo, hi = [], [], 0, 0, 0, [], []
        erased_keys, found = self.erased.get(s.tenant_id, set()), set()  # found: their ids, as the export holds them
        ref = self.contract.consumer_reference if self.contract else None
        reference = ref.column if ref else None
        for part in s.parts:
            if part.path is None:
                continue
            first, n = offset, part.rows
            offset += n
            keep = np.ones(n, dtype=bool)
            cut = sorted(r - first for r in aside if first <= r < first + n)
            table = pq.read_table(part.path) if cut else None
            if cut:
                quarantine.append(_audit_quarantine(s, table.take(cut), [aside[first + i] for i in cut]))
                keep[cut] = False
            if erased_keys and reference:
                ids = table if table is not None else pq.read_table(part.path, columns=["tenant_id", reference])
                keys = pseudonymise(ids["tenant_id"], ids[reference], self.key_for)
                gone = pc.fill_null(pc.is_in(keys, pa.array(sorted(erased_keys), pa.string())), False)
                erased += int(pc.sum(pc.and_(gone, pa.array(keep))).as_py() or 0)
                keep &= ~np.asarray(gone)
                found.update(pc.filter(ids[reference], gone).to_pylist())
            if not keep.any():
                continue
            rows += int(keep.sum())
            lo.append(part.min_ts)
            hi.append(part.max_ts)
            if keep.all() and part.one_day and (part.protected or self.contract is None):
                # the usual case: the part as staged, and its projection made beside it
                raw_parts.append(part.path)
                protected_parts += [part.protected] if part.protected else []
                continue
            table = pq.read_table(part.path) if table is None else table
            if not keep.all():
                table = table.filter(pa.array(keep))
                pq.write_table(table, part.path, compression="snappy")
            for day_part, day_rows in split_table_by_day(table, part.path):
                raw_parts.append(day_part)
                if self.contract is not None:
                    protected_parts.append(self._protect(day_rows, f"{day_part}.protected.parquet"))
        q = pa.concat_tables(quarantine) if quarantine else QUARANTINE_SCHEMA.empty_table()
        inferred = self._implied_removes(s, raw_parts, q, min(lo, default=None))
        if inferred is not None:
            raw_parts.append(inferred.path)
            if self.contract is not None:
                protected_parts.append(self._protect(pq.read_table(inferred.path),
                                                     f"{inferred.path}.protected.parquet"))
            rows += inferred.rows
            lo.append(inferred.min_ts)
            hi.append(inferred.max_ts)
        if erased_keys and reference and q.num_rows:
            q, dropped = _drop_erased_quarantine(q, s.tenant_id, erased_keys, self.key_for, (ref.name, ref.column),
                                                 found)
            erased += dropped
        if found and s.landing is not None:
            self._landed_erased[s.id] = (s, found)
        drift = merge_drift(*(p.drift for p in s.parts))
        batch = StagedBatch(
            s.tenant_id, s.entity, s.export_id, s.kind, s.source, s.items, s.export_time_us,
            raw_parts=raw_parts, protected_parts=protected_parts,
            quarantine=_quarantine_rows(q, (ref.name, ref.column) if ref else None) if q.num_rows else None,
            rows=rows, erased=erased, inferred_deletes=inferred.rows if inferred is not None else 0,
            bytes_exported=s.bytes_exported, window_from_us=s.window_from_us,
            min_event_ts=min(lo, default=None), max_event_ts=max(hi, default=None),
            seconds=time.perf_counter() - s.started,
            quality=_dumps(_quality_doc(verdict, self.run_id)) if verdict is not None else None,
            drift=orjson.dumps([_drift_doc(d) for d in drift]).decode() if drift else None)
        return batch

    def _protect(self, rows: pa.Table, path: str) -> str:
        pq.write_table(protect(rows, self.contract, self.key_for), path, compression="snappy")
        return path

    def _implied_removes(self, s: Staged, raw_parts: list[str], quarantine: pa.Table,
                         oldest_us: int | None) -> StagedFile | None:
        """Removes the tenant's latest full export implies (a part of the batch), if any."""
        if self.contract is None:
            return None
        if s.kind != "FULL_EXPORT":
            return self._stale_changes(s, raw_parts, oldest_us)
        self._snapshots[s.tenant_id] = Snapshot(s.export_time_us,
                                                partial(_staged_snapshot_ids, list(raw_parts), quarantine))
        return self._inferred_removes(s, raw_parts, quarantine)

    def _inferred_removes(self, s: Staged, raw_parts: list[str], quarantine: pa.Table) -> StagedFile | None:
        """A full export is the table as it was at its export time: a key the lake holds live but the
        snapshot does not was deleted in a window we never saw. It is published as a remove at the
        snapshot's time, so latest-wins still keeps any change newer than the snapshot."""
        live = self._live.get(s.tenant_id)
        if not live:  # the first full export of a table: nothing could have been deleted yet
            return None
        present = _staged_snapshot_ids(raw_parts, quarantine)
        if present is None:
            return None  # an unreadable item could be any key: infer nothing rather than delete it
        return self._removes_at(s, sorted(live - present), s.export_time_us, "inferred")

    def _stale_changes(self, s: Staged, raw_parts: list[str], oldest_us: int | None) -> StagedFile | None:
        """The mirror case, a change older than the tenant's latest full export that reaches the lake
        after it (a stream file read after the snapshot, an older window backfilled): where the
        snapshot does not hold its key, the item was gone by the snapshot's time, whatever change of
        it we never saw. A remove at that time says so; a change newer than the snapshot still wins."""
        if oldest_us is None:
            return None
        snapshot = self._snapshots.get(s.tenant_id) or self._published_snapshot(s.tenant_id)
        if snapshot is None or oldest_us >= snapshot.time_us:
            return None  # the usual case, read from the batch's own bounds
        rows = pa.concat_tables([pq.read_table(p, columns=["id", "_op", "_event_ts"]) for p in raw_parts])
        older = pc.and_(pc.less(rows["_event_ts"], pa.scalar(snapshot.time_us, pa.timestamp("us", tz="UTC"))),
                        pc.not_equal(rows["_op"], "remove"))
        changed = set(pc.filter(rows["id"], older).to_pylist())
        held = snapshot.held(changed)
        if held is None:
            return None  # an unreadable item could be any key: infer nothing rather than delete it
        return self._removes_at(s, sorted(changed - held), snapshot.time_us, "stale")

    def _published_snapshot(self, tenant_id: str) -> Snapshot | None:
        """The tenant's latest full export in the lake (from the batch log), asked only which keys it
        held when a batch holds changes older than it."""
        fulls = And(And(EqualTo("tenant_id", tenant_id), EqualTo("entity", self.entity)),
                    And(EqualTo("kind", "FULL_EXPORT"), EqualTo("outcome", "published")))
        rows = scan(self.lake, "ops", BATCH_LOG, fulls, ("export_id", "export_time"))
        if rows is None or not rows.num_rows:
            return None
        latest = rows.sort_by([("export_time", "descending")]).slice(0, 1).to_pylist()[0]
        return Snapshot(_us(latest["export_time"]), partial(_published_snapshot_ids, self.lake, self.entity, tenant_id,
                                                            latest["export_id"]))

    def _removes_at(self, s: Staged, ids: list[str], at_us: int, why: str) -> StagedFile | None:
        """Removes of `ids` at `at_us`, a part of batch `s` (line 0: no line of it says so)."""
        if not ids:
            return None
        n = len(ids)
        table = pa.table({"tenant_id": [s.tenant_id] * n, "id": ids, "_op": ["remove"] * n,
                          "_event_ts": pa.array([at_us] * n, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
                          "_export_id": [s.export_id] * n, "_source_file": [s.source] * n,
                          "_line": pa.array([0] * n, pa.int32())})
        schema = lake_schema(self.contract)
        table = pa.table({f.name: table[f.name] if f.name in table.column_names else pa.nulls(n, f.type)
                          for f in schema}).cast(schema)
        path = os.path.join(self.workdir, f"{why}-{s.tenant_id}-{s.export_id}.parquet")
        pq.write_table(table, path, compression="snappy")
        return StagedFile(path, n, QUARANTINE_SCHEMA.empty_table(), at_us, at_us)


@dataclass(frozen=True)
class Snapshot:
    """A tenant's latest full export: the table as it was at `time_us`. `held(keys)` says which of
    those keys it held, or None where an item of it could not be read (it could have been any key)."""
    time_us: int
    held: Callable[[set[str]], set[str] | None]


def _staged_snapshot_ids(raw_parts: list[str], quarantine: pa.Table, keys: set[str] | None = None) -> set[str] | None:
    """The keys a full export staged here holds: its rows' and its quarantined items'."""
    present: set[str] = set()
    for path in raw_parts:
        present |= set(pq.read_table(path, columns=["id"])["id"].to_pylist())
    for raw in quarantine["_raw"].to_pylist():
        item_id = plain_string(item_of(raw).get("id"))
        if item_id is None:
            return None
        present.add(item_id)
    return present if keys is None else present & keys


def _published_snapshot_ids(lake: Lake, entity: str, tenant_id: str, export_id: str, keys: set[str]) -> set[str] | None:
    """Which of `keys` a published full export holds: its rows' and its quarantined items'."""
    mine = And(EqualTo("tenant_id", tenant_id), EqualTo("_export_id", export_id))
    rows = scan(lake, "raw", entity, And(mine, In("id", keys)), ("id",)) if keys else None
    held = set(rows["id"].to_pylist()) if rows is not None else set()
    quarantined = scan(lake, "quarantine", entity, mine, ("_item_id",))
    ids = quarantined["_item_id"].to_pylist() if quarantined is not None else []
    return None if None in ids else held | (set(ids) & keys)


def _open_quietly(lake: Lake, tables: list[tuple[str, str]]) -> None:
    for zone, entity in tables:
        try:
            lake.table(zone, entity)
        except Exception:  # noqa: BLE001 - publish opens it again, and reports what fails
            return


KEY_COLUMNS = ["id", "last_changed_at", "ddb_version", "_line", "_event_ts", "_source_file"]


def _set_aside_duplicates(s: Staged) -> None:
    """The same key twice in one export (tenantlake.formats.duplicates decides which copy stays):
    every other copy is cut from its part and quarantined as duplicate_key, so the batch publishes."""
    keyed = [(n, pq.read_table(p.path, columns=KEY_COLUMNS)) for n, p in enumerate(s.parts) if p.path]
    keys = pa.concat_tables([t.append_column("_part", pa.array([n] * t.num_rows, pa.int32())).append_column(
        "_row", pa.array(np.arange(t.num_rows), pa.int64())) for n, t in keyed])
    mask = duplicated(keys)
    if not mask.any():
        return
    keys = keys.filter(pa.array(mask))
    full = {n: pq.read_table(s.parts[n].path) for n in set(keys["_part"].to_pylist())}
    copies = pa.concat_tables([full[n].take([r]) for n, r in zip(keys["_part"].to_pylist(), keys["_row"].to_pylist(),
                                                                   strict=True)])
    aside = resolve_duplicates(keys.append_column("_digest", row_digests(copies)))
    for n, table in full.items():
        mine = aside.filter(pc.equal(aside["_part"], n))
        if not mine.num_rows:
            continue
        rows = mine["_row"].to_pylist()
        keep = np.ones(table.num_rows, dtype=bool)
        keep[rows] = False
        part = s.parts[n]
        set_aside = _audit_quarantine(s, table.take(rows), ["duplicate_key"] * len(rows),
                                      mine["_detail"].to_pylist())
        pq.write_table(table.filter(pa.array(keep)), part.path, compression="snappy")
        s.parts[n] = StagedFile(part.path, int(keep.sum()), pa.concat_tables([part.quarantine, set_aside]),
                                part.min_ts, part.max_ts, part.drift)  # its projection is made again


def _dumps(doc) -> str:
    """JSON text of a result document (GX's results hold numpy scalars)."""
    return orjson.dumps(doc, default=str, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _drift_doc(d) -> dict:
    return d if isinstance(d, dict) else {k: v for k, v in vars(d).items() if not k.startswith("_")}


def _quality_doc(verdict: quality.Audit, run_id: str) -> dict:
    return {"run_id": run_id, "failed": verdict.failed, "warned": verdict.warned,
            "quarantined": len(verdict.quarantined_rows), "result": verdict.result}


def _read_parts(s: Staged, columns: list[str]) -> pa.Table:
    tables = [pq.read_table(p.path, columns=columns) for p in s.parts if p.path]
    return pa.concat_tables(tables) if tables else lake_schema(ENTITIES.get(s.entity)).empty_table().select(columns)


def _groups(staged: list[Staged], rows: int) -> Iterator[list[Staged]]:
    """The batches in order, in groups of about `rows` rows (a larger batch is a group alone)."""
    group, n = [], 0
    for s in staged:
        if group and n + s.rows > rows:
            yield group
            group, n = [], 0
        group.append(s)
        n += s.rows
    if group:
        yield group


def _audit_quarantine(s: Staged, rows: pa.Table, reasons: list[str], details: list[str] | None = None) -> pa.Table:
    """Decoded rows set aside (by the audit, or as duplicates), in the quarantine layout: in _raw
    the line (stream record) each came from as it was sent, or where that cannot be read again,
    the decoded row as JSON."""
    sent = _sent_lines(s, rows["_source_file"].to_pylist(), rows["_line"].to_pylist())
    return pa.Table.from_pydict({
        "tenant_id": rows["tenant_id"], "_export_id": rows["_export_id"], "_source_file": rows["_source_file"],
        "_line": rows["_line"], "_reason": reasons,
        "_detail": details or [f"failed {r} (quality suite)" for r in reasons],
        "_raw": [line if line is not None else orjson.dumps(r, default=str)
                 for line, r in zip(sent, rows.to_pylist(), strict=True)],
    }, schema=QUARANTINE_SCHEMA)


def _sent_lines(s: Staged, files: list[str], lines: list[int]) -> list[bytes | None]:
    """The original lines (stream records) at (file, 1-based line), read again from the landing
    (only rows set aside after decoding come here, so this is rare); None where they cannot be."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for f, n in zip(files, lines, strict=True):
        wanted[f].add(n)
    found: dict[tuple[str, int], bytes] = {}
    try:
        if s.landing is None:
            raise ValueError("the batch does not say where its files are")
        if s.kind.startswith("STREAM_"):
            records = sent_records(stream_text(s.landing.get(s.source)), s.kind.removeprefix("STREAM_").lower())
            found = {(s.source, n): records[n - 1] for n in wanted.get(s.source, ()) if 0 < n <= len(records)}
        else:  # DYNAMODB_JSON or ION: either way one item per line, numbered as the decoders number them
            for f in read_export(s.landing, s.source).files:
                for piece in stream_slices(s.landing, f) if f.key in wanted else ():
                    for i, line in enumerate(piece.text.split(b"\n"), piece.first_line):
                        if i in wanted[f.key]:
                            found[(f.key, i)] = line.rstrip(b"\r")
    except (ExportError, OSError, ValueError, zlib.error) as e:  # the row's JSON stands in for it
        log.warning("%s: set-aside lines not read again (%s)", s.source, e)
    return [found.get((f, n)) for f, n in zip(files, lines, strict=True)]


def ingest_export(landing: Store, summary_key: str, lake: Lake, *, tenant_id: str, entity: str,
                  tenant: Tenant | None, run_id: str, key_for: KeyFor, workers: int = 1,
                  audit: bool = True) -> BatchResult:
    """One export, staged and published on its own (`tenantlake convert`, tests)."""
    with Ingest(lake, entity, run_id, key_for, workers=workers, audit=audit) as session:
        results, _ = session.publish([session.stage_export(landing, summary_key, tenant_id, tenant)])
    return results[0]
