"""Reading the lake by snapshot: what is there now, and what is new since a snapshot.

Readers never list folders: every file comes from a snapshot's manifests, so a file placed by a
publish that never committed is never read.
"""

from __future__ import annotations

from collections import defaultdict

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, EqualTo, In
from pyiceberg.manifest import ManifestContent, ManifestEntryStatus
from pyiceberg.table import Table

from tenantlake.lake.batches import LakeFile, LoadBatch
from tenantlake.lake.catalog import BATCH_LOG, Lake
from tenantlake.lake.files import BatchId, batches_of_file

# Snapshots that add rows a reader must load; compactions and backfills only rewrite what is there.
LOADABLE = {"publish"}


def current_files(lake: Lake, zone: str, entity: str, row_filter: BooleanExpression | None = None) -> list[LakeFile]:
    """The data files of the table's current snapshot (empty when the table has none)."""
    if not lake.exists(zone, entity):
        return []
    table = lake.table(zone, entity, refresh=True)
    if table.current_snapshot() is None:
        return []
    return [LakeFile(t.file.file_path, t.file.record_count, t.file.file_size_in_bytes)
            for t in table.scan(row_filter=row_filter or AlwaysTrue()).plan_files()]


def scan(lake: Lake, zone: str, entity: str, row_filter: BooleanExpression | None = None,
         columns: tuple[str, ...] = ("*",)) -> pa.Table | None:
    """The rows (and columns) of the table's current snapshot that match; None when the table does
    not exist yet or holds nothing."""
    if not lake.exists(zone, entity):
        return None
    table = lake.table(zone, entity, refresh=True)
    if table.current_snapshot() is None:
        return None
    return table.scan(row_filter=row_filter or AlwaysTrue(), selected_fields=columns).to_arrow()


def read(lake: Lake, zone: str, entity: str, tenant_id: str | None = None) -> pa.Table | None:
    """Every row of the table's current snapshot (optionally one tenant's): tests, the CLI, small lakes."""
    rows = scan(lake, zone, entity, EqualTo("tenant_id", tenant_id) if tenant_id else None)
    return rows if rows is not None and rows.num_rows else None


def _added_files(table: Table, snapshot) -> list:
    out = []
    for manifest in snapshot.manifests(table.io):
        if manifest.content != ManifestContent.DATA or manifest.added_snapshot_id != snapshot.snapshot_id:
            continue
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            if entry.status == ManifestEntryStatus.ADDED and entry.snapshot_id == snapshot.snapshot_id:
                out.append(entry.data_file)
    return out


def new_batches(lake: Lake, entity: str, after_snapshot: int | None,
                zone: str = "protected") -> tuple[list[LoadBatch], int | None]:
    """The batches published to the zone's table after `after_snapshot`, and the table's current
    snapshot id (to remember for next time). None reads everything there is: the current
    snapshot's files, which are what promotion, compaction and erasure left (walking the published
    snapshots instead took files those rewrites replaced, and stopped at the first expired one).
    When `after_snapshot` has been expired meanwhile, every current file is returned too: the
    reader's own exactly-once record (the warehouse's load audit) skips what it already has."""
    if not lake.exists(zone, entity):
        return [], None
    table = lake.table(zone, entity, refresh=True)
    current = table.current_snapshot()
    if current is None:
        return [], None
    if current.snapshot_id == after_snapshot:
        return [], after_snapshot
    files: list = []
    chain, snapshot, reached = [], current, False
    while snapshot is not None and after_snapshot is not None:
        if snapshot.snapshot_id == after_snapshot:
            reached = True
            break
        chain.append(snapshot)
        snapshot = table.snapshot_by_id(snapshot.parent_snapshot_id) if snapshot.parent_snapshot_id else None
    if not reached:  # everything, or expired: start over from what is there
        files = [t.file for t in table.scan().plan_files()]
    else:
        for s in reversed(chain):
            if (s.summary or {}).get("tenantlake.operation") in LOADABLE:
                files += _added_files(table, s)
    by_batch: dict[BatchId, list] = defaultdict(list)
    snapshot_of = {}
    for f in files:
        for batch in batches_of_file(table, f):
            by_batch[batch].append(f)
    kinds = batch_kinds(lake, entity, {t for t, _ in by_batch})
    out = []
    for (tenant_id, export_id), fs in sorted(by_batch.items()):
        shared = any(len(batches_of_file(table, f)) > 1 for f in fs)
        out.append(LoadBatch(
            tenant_id, entity, export_id, kinds.get((tenant_id, export_id), "UNKNOWN"),
            -1 if shared else sum(f.record_count for f in fs),  # -1: rows of a compacted file are counted by the reader
            tuple(LakeFile(f.file_path, f.record_count, f.file_size_in_bytes) for f in fs),
            snapshot_of.get((tenant_id, export_id), current.snapshot_id)))
    return out, current.snapshot_id


def batch_kinds(lake: Lake, entity: str, tenants: set[str]) -> dict[BatchId, str]:
    """Each published batch's kind (FULL_EXPORT, INCREMENTAL_EXPORT, STREAM_*), from the batch log."""
    rows = scan(lake, "ops", BATCH_LOG, And(In("tenant_id", tenants), EqualTo("entity", entity)),
                ("tenant_id", "export_id", "kind")) if tenants else None
    if rows is None:
        return {}
    return {(t, e): k for t, e, k in zip(rows["tenant_id"].to_pylist(), rows["export_id"].to_pylist(),
                                         rows["kind"].to_pylist(), strict=True)}


def published_ids(lake: Lake, entity: str, tenants: set[str]) -> dict[str, set[str]]:
    """The ids published so far per tenant (the quality gate's referential check)."""
    return grouped(scan(lake, "raw", entity, In("tenant_id", tenants), ("tenant_id", "id")) if tenants else None,
                   "id", tenants)


def grouped(rows: pa.Table | None, column: str, tenants: set[str]) -> dict[str, set[str]]:
    """A column's values per tenant (every tenant asked about has an entry)."""
    out: dict[str, set[str]] = {t: set() for t in tenants}
    if rows is not None:
        for t, v in zip(rows["tenant_id"].to_pylist(), rows[column].to_pylist(), strict=True):
            out[t].add(v)
    return out


def live_keys(lake: Lake, entity: str, tenant_ids: set[str],
              excluding: set[BatchId] = frozenset()) -> dict[str, set[str]]:
    """Per tenant, the keys of its table that are live in the lake: their latest change (by event
    time, then a change over a snapshot of the same instant, then sequence, file and line, as the
    warehouse orders them) is not a remove. One scan for every tenant asked about. The rows of the
    batches `excluding` are left out: a publication asks about the lake as it was before its own
    batches, which raw already holds when an earlier try of it was killed after raw's commit."""
    rows = scan(lake, "raw", entity, In("tenant_id", tenant_ids), ("tenant_id", "id", "_op", "_event_ts", "_sequence",
                                                                   "_source_file", "_line", "_export_id")) \
        if tenant_ids else None
    if rows is not None and excluding:
        pairs = pc.binary_join_element_wise(*(rows[c].cast(pa.string()) for c in ("tenant_id", "_export_id")), "\x00")
        rows = rows.filter(pc.invert(pc.is_in(pairs, pa.array([f"{t}\x00{e}" for t, e in excluding]))))
    if rows is None or not rows.num_rows:
        return grouped(None, "id", tenant_ids)
    rank = pc.if_else(pc.equal(rows["_op"], "snapshot"), 0, 1)
    rows = rows.append_column("_rank", rank).append_column("_seq", pc.fill_null(rows["_sequence"], ""))
    rows = rows.sort_by([("tenant_id", "ascending"), ("id", "ascending"), ("_event_ts", "ascending"),
                         ("_rank", "ascending"), ("_seq", "ascending"), ("_source_file", "ascending"),
                         ("_line", "ascending")])
    last = rows.group_by(["tenant_id", "id"], use_threads=False).aggregate([("_op", "last")])
    return grouped(last.filter(pc.not_equal(last["_op_last"], "remove")), "id", tenant_ids)
