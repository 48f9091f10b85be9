"""Write-Audit-Publish on Iceberg: audited batches become visible in one commit per zone.

A Publication gathers the audited batches of one entity (a run's shard of tenants) and commits
them: quarantine, then raw, then protected (what the warehouse loads, so last), each ONE Iceberg
commit registering the batches' files, then the batch log. Before each commit it asks the table
which of the batches it already holds (each data file holds one batch, and its `_export_id` and
`tenant_id` bounds are kept in full): a replay after a kill or a retry is recognised and skipped
per zone, so a run killed between two commits completes the missing zones when it runs again, and
no zone ever holds a batch twice. A kill at any point leaves each table at its old snapshot or its
new one; files moved in by a commit that never happened are orphans no reader sees.

Snapshot summaries say what a commit was (`tenantlake.operation`: publish, compact, erase,
offboard, backfill), its run, and how many batches, tenants and rows it added. The batches
themselves are recognised from the data files' bounds, not listed in the summary: at 2,000 tenants
a list per snapshot would grow the table metadata rewritten at every commit by megabytes.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import And, EqualTo, In
from pyiceberg.table import Table
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from tenantlake.contracts import ENTITIES
from tenantlake.lake.catalog import BATCH_LOG, BATCH_LOG_SCHEMA, QUARANTINE_LAKE_SCHEMA, Lake
from tenantlake.lake.files import BatchId, Placed, Placer, batches_of_file
from tenantlake.lake.read import scan


@dataclass
class BatchHeader:
    """Which batch: one tenant's export (or stream file) of one entity, and what its source listed.
    Ingest's staged batch and the audited one below both start with it."""

    tenant_id: str
    entity: str
    export_id: str
    kind: str
    source: str
    items: int
    export_time_us: int

    @property
    def id(self) -> BatchId:
        return (self.tenant_id, self.export_id)


@dataclass
class StagedBatch(BatchHeader):
    """One audited batch, ready to publish: local Parquet files per zone, and its accounting."""

    raw_parts: list[str] = field(default_factory=list)  # local files, one UTC day each
    protected_parts: list[str] = field(default_factory=list)
    quarantine: pa.Table | None = None  # QUARANTINE_LAKE_SCHEMA
    rows: int = 0
    erased: int = 0
    inferred_deletes: int = 0  # keys a full re-snapshot no longer holds, published as removes (in rows)
    bytes_exported: int | None = None
    window_from_us: int | None = None  # an incremental export's window start (backfills find gaps by it)
    min_event_ts: int | None = None
    max_event_ts: int | None = None
    seconds: float = 0.0
    quality: str | None = None  # JSON
    drift: str | None = None  # JSON

    @property
    def quarantined(self) -> int:
        return self.quarantine.num_rows if self.quarantine is not None else 0


@dataclass
class Failed:
    """A batch that could not be published, for the batch log (the reason names no data value)."""

    tenant_id: str
    entity: str
    export_id: str
    kind: str
    source: str
    reason: str
    items: int = 0
    quality: str | None = None


@dataclass
class Published:
    published: list[BatchId] = field(default_factory=list)  # new in at least one zone
    replayed: list[BatchId] = field(default_factory=list)  # already held by every zone
    snapshots: dict[str, int] = field(default_factory=dict)  # zone -> snapshot id committed
    bytes_stored: dict[BatchId, int] = field(default_factory=dict)


def batches_present(table: Table, wanted: Iterable[BatchId]) -> dict[BatchId, int]:
    """Which of `wanted` the table already holds, from its current snapshot: pruned by the tenant
    partition and the `_export_id` bounds (kept in full, see catalog._PROPERTIES). Each with the
    bytes of the files holding it alone (a compacted file's share is not known: not counted)."""
    wanted = set(wanted)
    if not wanted or table.current_snapshot() is None:
        return {}
    scan = table.scan(row_filter=And(In("tenant_id", {t for t, _ in wanted}), In("_export_id", {e for _, e in wanted})),
                      selected_fields=("tenant_id", "_export_id"))
    found: dict[BatchId, int] = {}
    for task in scan.plan_files():
        held = batches_of_file(table, task.file)
        for bid in held & wanted:
            found[bid] = found.get(bid, 0) + (task.file.file_size_in_bytes if len(held) == 1 else 0)
    return found


# A commit another task's commit beat is tried again, from the table's new snapshot (catalog.NO_REBASE).
retried_on_conflict = retry(retry=retry_if_exception_type(CommitFailedException), stop=stop_after_attempt(8),
                             wait=wait_random_exponential(multiplier=0.05, max=2), reraise=True)


def summary(operation: str, run_id: str, **counts) -> dict[str, str]:
    return {"tenantlake.operation": operation, "tenantlake.run-id": run_id,
            **{f"tenantlake.{k.replace('_', '-')}": str(v) for k, v in counts.items()}}


@retried_on_conflict
def append_files(lake: Lake, zone: str, entity: str, files: list[Placed], properties: dict[str, str]) -> int | None:
    """One append commit of already-placed files; a concurrent commit by another task makes it
    retry on the table's new snapshot (appends never conflict). A merge append: a fast append adds
    a manifest per commit that every later scan reads, so a table of hourly shard commits got
    slower to plan by the hour (the batch log: 4 ms per scan at 1 commit, 592 ms at 800); merged
    as they accumulate, 55 ms at 800."""
    if not files:
        return None
    return _append(lake.table(zone, entity, refresh=True), files, properties)


def _append(table: Table, files: list[Placed], properties: dict[str, str]) -> int:
    with table.transaction() as tx, tx.update_snapshot(snapshot_properties=properties).merge_append() as append:
        for f in files:
            append.append_data_file(f.data_file)
    return table.current_snapshot().snapshot_id  # the committed metadata: a commit updates its table


@retried_on_conflict
def append_new_batches(lake: Lake, zone: str, entity: str, files: list[Placed], run_id: str,
                       checked: int | None) -> tuple[int | None, list[Placed]]:
    """append_files for a publication, whose batches were found absent at snapshot `checked`. Where
    the table has moved on since, another run may have published some of the same batches (a manual
    re-run beside the scheduled one: both found them absent, and both committed them): those are
    asked for again and left out, so no zone holds a batch twice. (snapshot, the files committed)."""
    table = lake.table(zone, entity, refresh=True)
    current = table.current_snapshot()
    if files and (current.snapshot_id if current else None) != checked:
        held = batches_present(table, {(f.tenant_id, f.export_id) for f in files})
        files = [f for f in files if (f.tenant_id, f.export_id) not in held]
    if not files:
        return None, []
    return _append(table, files, summary(
        "publish", run_id, batches=len({(f.tenant_id, f.export_id) for f in files}),
        tenants=len({f.tenant_id for f in files}), rows=sum(f.rows for f in files))), files


class Publication:
    """The audited batches of one entity, published together: one commit per zone."""

    def __init__(self, lake: Lake, entity: str, run_id: str, workdir: str | None = None):
        self.lake, self.entity, self.run_id = lake, entity, run_id
        self.batches: list[StagedBatch] = []
        self.failed: list[Failed] = []
        self.workdir = workdir or tempfile.mkdtemp(prefix="tenantlake-publish-")

    def add(self, batch: StagedBatch) -> None:
        if batch.entity != self.entity:
            raise ValueError(f"a {batch.entity} batch in a {self.entity} publication")
        self.batches.append(batch)

    def _unique(self) -> tuple[list[StagedBatch], set[BatchId]]:
        """The batches to publish, the first of each (tenant, export id); the ids handed in twice."""
        seen, first, twice = set(), [], set()
        for b in self.batches:
            if b.id in seen:
                twice.add(b.id)
            else:
                seen.add(b.id)
                first.append(b)
        return first, twice

    def fail(self, failed: Failed) -> None:
        self.failed.append(failed)

    def _local(self, table: pa.Table, name: str) -> str:
        path = os.path.join(self.workdir, f"{name}-{time.monotonic_ns()}.parquet")
        pq.write_table(table, path, compression="snappy")
        return path

    def _zone_files(self, zone: str, batch: StagedBatch) -> list[str]:
        if zone == "raw":
            return batch.raw_parts
        if zone == "protected":
            return batch.protected_parts
        if batch.quarantined:
            return [self._local(batch.quarantine.cast(QUARANTINE_LAKE_SCHEMA), "quarantine")]
        return []

    def commit(self) -> Published:
        out = Published()
        # A batch is a replay when every zone it has files for already held them; a batch with no
        # rows at all (an empty window) has nothing to replay and is simply published.
        with_files, new, late = set(), set(), set()  # late: found held only at the commit (another run's)
        held_bytes: dict[BatchId, int] = {}
        batches, twice = self._unique()
        zones = ["quarantine", "raw"] + (["protected"] if self.entity in ENTITIES else [])
        for zone in zones:
            candidates = [b for b in batches if self._zone_files(zone, b)]
            if not candidates:
                continue
            table = self.lake.table(zone, self.entity, refresh=True)
            checked = table.current_snapshot().snapshot_id if table.current_snapshot() else None
            present = batches_present(table, (b.id for b in candidates))
            if zone in ("raw", "protected"):  # a replay's stored bytes, for the log when it is unlogged
                for bid, size in present.items():
                    held_bytes[bid] = held_bytes.get(bid, 0) + size
            placer = Placer(table)
            placed: list[Placed] = []
            with_files |= {b.id for b in candidates}
            for b in candidates:
                if b.id not in present:
                    placed += [placer.place(local, b.tenant_id, b.export_id, f"{zone[0]}{n:05d}")
                               for n, local in enumerate(self._zone_files(zone, b))]
            snapshot, committed = append_new_batches(self.lake, zone, self.entity, placed, self.run_id, checked)
            late |= {(p.tenant_id, p.export_id) for p in placed} - {(p.tenant_id, p.export_id) for p in committed}
            for p in committed:
                bid = (p.tenant_id, p.export_id)
                new.add(bid)
                if zone in ("raw", "protected"):
                    out.bytes_stored[bid] = out.bytes_stored.get(bid, 0) + p.bytes
            if snapshot is not None:
                out.snapshots[zone] = snapshot
        out.replayed = sorted((with_files - new) | twice)
        out.published = [b.id for b in batches if b.id not in set(out.replayed)]
        unlogged = self._unlogged((with_files - new) - late - twice)
        out.bytes_stored |= {bid: held_bytes.get(bid, 0) for bid in unlogged}
        self._log(out, unlogged)
        return out

    def _unlogged(self, held: set[BatchId]) -> set[BatchId]:
        """Of the batches every zone held before this run (a replay), those the batch log does not
        name as published: a run killed after its last data commit and before its log commit. They
        are logged now, or backfill, stream reading and status would never know of them."""
        if not held:
            return set()
        published = And(EqualTo("entity", self.entity), EqualTo("outcome", "published"))
        ids = And(In("tenant_id", {t for t, _ in held}), In("export_id", {e for _, e in held}))
        rows = scan(self.lake, "ops", BATCH_LOG, And(published, ids), ("tenant_id", "export_id"))
        logged = set(zip(rows["tenant_id"].to_pylist(), rows["export_id"].to_pylist(), strict=True)) if rows else set()
        return held - logged

    def _log(self, out: Published, unlogged: set[BatchId]) -> None:
        now = datetime.now(UTC)
        us = lambda v: None if v is None else datetime.fromtimestamp(v / 1e6, UTC)  # noqa: E731
        rows = [{
            "tenant_id": b.tenant_id, "entity": b.entity, "export_id": b.export_id, "kind": b.kind,
            "source": b.source, "run_id": self.run_id, "outcome": "published", "reason": None, "items": b.items,
            "rows": b.rows, "quarantined": b.quarantined, "erased": b.erased, "inferred_deletes": b.inferred_deletes,
            "files": len(b.raw_parts), "bytes_exported": b.bytes_exported,
            "bytes_stored": out.bytes_stored.get(b.id, 0),
            "export_time": us(b.export_time_us), "window_from": us(b.window_from_us),
            "min_event_ts": us(b.min_event_ts), "max_event_ts": us(b.max_event_ts),
            "seconds": b.seconds, "quality": b.quality, "drift": b.drift, "logged_at": now,
        } for b in self._unique()[0] if b.id in set(out.published) | unlogged]
        rows += [{
            "tenant_id": f.tenant_id, "entity": f.entity, "export_id": f.export_id, "kind": f.kind, "source": f.source,
            "run_id": self.run_id, "outcome": "failed", "reason": f.reason, "items": f.items, "quality": f.quality,
            "logged_at": now,
        } for f in self.failed]
        log_batches(self.lake, rows, self.run_id, self.workdir)


def log_batches(lake: Lake, rows: list[dict], run_id: str, workdir: str) -> None:
    """Append rows to the batch log, one file per commit (the ops tables are not partitioned: a
    file per tenant would cost a placement each for a handful of rows)."""
    if not rows:
        return
    table = lake.table("ops", BATCH_LOG, refresh=True)
    path = os.path.join(workdir, f"log-{time.monotonic_ns()}.parquet")
    pq.write_table(pa.Table.from_pylist(rows, schema=BATCH_LOG_SCHEMA), path, compression="snappy")
    placed = Placer(table).place(path, "all", run_id, "log")
    append_files(lake, "ops", BATCH_LOG, [placed], summary("log", run_id, batches=len(rows)))
    trim_history(lake, "ops", BATCH_LOG)


# A log's rows are its history, and no reader asks for an old snapshot of it; but every commit
# rewrites the table's metadata with every snapshot kept, so with the lake's 72 h retention a
# fleet's shard commits (128 an hour at 2,000 tenants) made each commit slower by the hour (the
# batch log: 12 ms at 10 snapshots, 458 ms at 800). Kept to the newest few, a commit stays flat.
LOG_SNAPSHOTS_KEPT = 32


def trim_history(lake: Lake, zone: str, name: str) -> int:
    """Expire all but the newest LOG_SNAPSHOTS_KEPT snapshots once twice that many accumulate (so
    one commit in LOG_SNAPSHOTS_KEPT pays for it); their files go with the lake's orphan removal.
    A concurrent commit that wins is left to trim next time. Returns the snapshots expired."""
    table = lake.load(zone, name)
    if len(table.metadata.snapshots) < 2 * LOG_SNAPSHOTS_KEPT:
        return 0
    snapshots = sorted(table.metadata.snapshots, key=lambda s: (s.timestamp_ms, s.sequence_number or 0))
    try:
        return expire_snapshots(table, [s.snapshot_id for s in snapshots[:-LOG_SNAPSHOTS_KEPT]])
    except CommitFailedException:
        return 0


def expire_snapshots(table: Table, ids: Iterable[int]) -> int:
    """Expire the snapshots `ids`, never the table's current one; returns how many were."""
    current = table.current_snapshot()
    old = [i for i in ids if current is None or i != current.snapshot_id]
    if old:
        table.maintenance.expire_snapshots().by_ids(old).commit()
    return len(old)
