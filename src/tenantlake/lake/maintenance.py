"""Keeping the lake small, fast and forgetful: compaction, snapshot expiry, orphan removal.

* **Compaction**: thousands of tenants with hourly windows publish one small file per (tenant,
  day, batch); a partition with many small files is rewritten as one, in one commit whose
  summary says `tenantlake.operation=compact` (readers loading new batches ignore it: no row
  changed).
* **Expiry**: snapshots older than the time-travel retention (Settings.snapshot_retention_hours,
  TENANTLAKE_SNAPSHOT_RETENTION_HOURS, default 72 h) are expired; erasure and offboarding expire
  every snapshot older than their own commit, so no snapshot can still read the rows they removed.
* **Orphans**: pyiceberg's expiry only edits metadata, so the files no remaining snapshot
  references (data files, manifests, manifest lists, old metadata) are deleted here, together with
  files a killed publish moved in but never committed. Files younger than a grace period are left
  alone: a publish running right now may have moved them in and not committed yet.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import And, EqualTo
from pyiceberg.table import Table
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from tenantlake.lake.catalog import Lake
from tenantlake.lake.files import Placer, is_local, local_path
from tenantlake.lake.publish import expire_snapshots, retried_on_conflict, summary

ORPHAN_GRACE = timedelta(hours=6)  # longer than any publish takes between moving files in and committing


@dataclass
class Maintained:
    table: str
    files_before: int = 0
    files_after: int = 0
    partitions_compacted: int = 0
    snapshots_expired: int = 0
    orphans_removed: int = 0
    notes: list[str] = field(default_factory=list)


def _filesystem(table: Table, location: str) -> tuple[pafs.FileSystem, str]:
    if is_local(location):
        return pafs.LocalFileSystem(), local_path(location)
    scheme, _, rest = location.partition("://")
    bucket = rest.split("/", 1)[0]
    return table.io.fs_by_scheme(scheme, bucket), rest


def referenced_files(table: Table) -> set[str]:
    """Every file a remaining snapshot or the current metadata needs."""
    meta = table.metadata
    keep = {table.metadata_location, *(m.metadata_file for m in meta.metadata_log)}
    for snapshot in meta.snapshots:
        keep.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            keep.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                keep.add(entry.data_file.file_path)
    for stats in meta.statistics:
        keep.add(stats.statistics_path)
    return {_strip(k) for k in keep}


def _strip(location: str) -> str:
    return location.removeprefix("file://").split("://", 1)[-1]


def remove_orphans(table: Table, grace: timedelta = ORPHAN_GRACE, now: datetime | None = None) -> int:
    """Delete files under the table's location that nothing references and that are older than
    `grace`. Returns how many were deleted."""
    now = now or datetime.now(UTC)
    filesystem, base = _filesystem(table, table.location())
    keep = referenced_files(table)
    removed = 0
    try:
        infos = filesystem.get_file_info(pafs.FileSelector(base, recursive=True))
    except FileNotFoundError:
        return 0
    for info in infos:
        if info.type != pafs.FileType.File or info.path in keep or _strip(info.path) in keep:
            continue
        if info.mtime is not None and now - info.mtime.replace(tzinfo=info.mtime.tzinfo or UTC) < grace:
            continue
        filesystem.delete_file(info.path)
        removed += 1
    return removed


@retry(retry=retry_if_exception_type(CommitFailedException), stop=stop_after_attempt(8),
       wait=wait_random_exponential(multiplier=0.05, max=2), reraise=True)
def expire(lake: Lake, zone: str, entity: str, older_than: datetime) -> int:
    """Expire every snapshot older than `older_than` except the current one."""
    table = lake.load(zone, entity)
    return expire_snapshots(table, [s.snapshot_id for s in table.metadata.snapshots
                                    if datetime.fromtimestamp(s.timestamp_ms / 1000, UTC) < older_than])


def forget_history(lake: Lake, zone: str, entity: str) -> tuple[int, int]:
    """After rows were deleted: expire every snapshot but the current one, then delete every file no
    longer referenced, whatever its age if nothing newer than the deletion could be in flight.
    Returns (snapshots expired, files removed)."""
    expired = expire(lake, zone, entity, datetime.now(UTC) + timedelta(seconds=1))
    table = lake.load(zone, entity)
    return expired, remove_orphans(table, grace=timedelta(0))


# An ops log is not partitioned and only grows (a file per shard commit: ~3,000 a day at 2,000
# tenants, each read by every scan of it): its files smaller than this are merged, the larger
# ones left as they are, so upkeep never rewrites the whole log.
OPS_SMALL_FILE = 32 << 20


def _small_partitions(table: Table, min_files: int, below: int | None = None) -> dict[tuple, list]:
    by_partition: dict[tuple, list] = {}
    for task in table.scan().plan_files():
        if below is None or task.file.file_size_in_bytes < below:
            by_partition.setdefault(tuple(task.file.partition), []).append(task.file)
    return {k: v for k, v in by_partition.items() if len(v) >= min_files}


def compact(lake: Lake, zone: str, entity: str, min_files: int = 8, run_id: str = "maintenance",
            workdir: str = "/tmp") -> Maintained:
    """Rewrite every partition holding `min_files` or more files as one file, one commit per table.
    Rows and their order within a batch are kept; readers see the same rows before and after."""
    table = lake.load(zone, entity)  # as it is: compaction neither creates nor evolves a table
    result = Maintained(f"{lake.namespace(zone)}.{entity.lower()}")
    if table.current_snapshot() is None:
        return result
    result.files_before = sum(1 for _ in table.scan().plan_files())
    groups = _small_partitions(table, min_files, OPS_SMALL_FILE if zone == "ops" else None)
    if groups:
        _rewrite(lake, zone, entity, groups, run_id, workdir)
        result.partitions_compacted = len(groups)
    result.files_after = sum(1 for _ in lake.load(zone, entity).scan().plan_files())
    return result


@retry(retry=retry_if_exception_type(CommitFailedException), stop=stop_after_attempt(5),
       wait=wait_random_exponential(multiplier=0.1, max=5), reraise=True)
def _rewrite(lake: Lake, zone: str, entity: str, groups: dict[tuple, list], run_id: str, workdir: str) -> None:
    table = lake.load(zone, entity)
    current = {t.file.file_path for t in table.scan().plan_files()}
    placer = Placer(table)
    replaced, added = [], []
    for files in groups.values():
        files = [f for f in files if f.file_path in current]  # a concurrent commit may have removed some
        if len(files) < 2:
            continue
        tables = []
        for f in files:
            with table.io.new_input(f.file_path).open() as stream:
                tables.append(pq.read_table(stream))
        merged = pa.concat_tables(tables, promote_options="permissive")
        local = os.path.join(workdir, f"compact-{uuid.uuid4().hex}.parquet")
        pq.write_table(merged, local, compression="snappy")
        tenant = merged["tenant_id"][0].as_py() if zone != "ops" else "all"  # an ops file holds every tenant
        added.append(placer.place(local, tenant, "compacted", "c"))
        replaced += files
    if not added:
        return
    props = summary("compact", run_id, files_replaced=len(replaced), files_added=len(added))
    with table.transaction() as tx, tx.update_snapshot(snapshot_properties=props).overwrite() as rewrite:
        for f in replaced:
            rewrite.delete_data_file(f)
        for p in added:
            rewrite.append_data_file(p.data_file)


@retried_on_conflict
def delete_rows(lake: Lake, zone: str, entity: str, predicate, operation: str, run_id: str) -> int:
    """Delete the rows matching `predicate` in one commit (whole files are dropped without a
    rewrite when every row matches: a tenant's partitions), returning how many rows went."""
    if not lake.exists(zone, entity):
        return 0
    table = lake.load(zone, entity)
    if table.current_snapshot() is None:
        return 0
    before = sum(t.file.record_count for t in table.scan(row_filter=predicate).plan_files())
    if not before:
        return 0
    gone = table.scan(row_filter=predicate).to_arrow().num_rows
    if gone:
        table.delete(predicate, snapshot_properties=summary(operation, run_id, rows=gone))
    return gone


def tenant_predicate(tenant_id: str, **equal: str):
    expr = EqualTo("tenant_id", tenant_id)
    for column, value in equal.items():
        expr = And(expr, EqualTo(column, value))
    return expr
