"""Putting finished Parquet files into a table's data folder, and describing them to Iceberg.

The decoder's Parquet writer is the fast one (measured in benchmarks/ingest_throughput.py), so
files are written by it, audited, and only then registered with the table in one commit
(pyiceberg's add_files does the same, but reads every footer back, ~1.2 ms a file; here the
footer is read from the local copy before it moves, and the statistics plan is made once per table).

A file in the data folder that no snapshot references is invisible to every reader of the table
(they read snapshots, never folder listings); `maintenance.remove_orphans` deletes such leftovers
of a killed publish once they are older than any publish can take.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.io.pyarrow import (
    MetricModeTypes,
    MetricsMode,
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.table import Table

from tenantlake.lake.hive import NO_STATISTICS

BatchId = tuple[str, str]  # (tenant_id, export_id)
SAFE = str.maketrans({c: "_" for c in "/\\:*?\"<>| "})


@dataclass(frozen=True)
class Placed:
    data_file: DataFile
    tenant_id: str
    export_id: str
    rows: int
    bytes: int


def is_local(location: str) -> bool:
    return "://" not in location or location.startswith("file://")


def local_path(location: str) -> str:
    return location.removeprefix("file://")


def day_of(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).date().isoformat()


def split_by_day(path: str, column: str = "_event_ts") -> list[str]:
    """A local Parquet file as one file per UTC day of `column` (Iceberg partitions by day, and a
    data file belongs to one partition). A file within one day is returned as it is, having read
    only its `column` (a migrated hive lake's files are one day each)."""
    days = pc.cast(pq.read_table(path, columns=[column])[column], pa.date32())
    lo, hi = pc.min_max(days).values()
    if lo == hi:
        return [path]
    return [p for p, _ in split_table_by_day(pq.read_table(path), path, column)]


def split_table_by_day(table: pa.Table, path: str, column: str = "_event_ts") -> list[tuple[str, pa.Table]]:
    """`split_by_day` for a file already in memory as `table`: each day's file and its rows, so the
    caller need not read back what it just wrote."""
    days = pc.cast(table[column], pa.date32())
    lo, hi = pc.min_max(days).values()
    if lo == hi:
        return [(path, table)]
    out = []
    for day in pc.unique(days).to_pylist():
        part = f"{path}.{day.isoformat()}.parquet"
        rows = table.filter(pc.equal(days, pa.scalar(day, pa.date32())))
        pq.write_table(rows, part, compression="snappy")
        out.append((part, rows))
    os.unlink(path)
    return out


class Placer:
    """Moves local Parquet files into one table's data folder as Iceberg DataFiles."""

    def __init__(self, table: Table):
        self.table = table
        meta = table.metadata
        self.schema = meta.schema()
        self.spec = meta.spec()
        self.spec_id = meta.default_spec_id
        self.plan = compute_statistics_plan(self.schema, meta.properties)
        for name in NO_STATISTICS:  # parts carry none for these: asking for them logged a warning per file
            if name in self.schema.column_names:
                field_id = self.schema.find_field(name).field_id
                self.plan[field_id] = replace(self.plan[field_id], mode=MetricsMode(MetricModeTypes.NONE))
        self.mapping = parquet_path_to_id_mapping(self.schema)

    def target(self, tenant_id: str, export_id: str, part: str) -> str:
        name = f"{export_id.translate(SAFE)}-{part}-{uuid.uuid4().hex[:12]}.parquet"
        return f"{self.table.location().rstrip('/')}/data/tenant_id={tenant_id}/{name}"

    def place(self, local: str, tenant_id: str, export_id: str, part: str) -> Placed:
        """Move (local lake) or upload (S3) a finished local file, and describe it."""
        metadata = pq.read_metadata(local)
        size = os.path.getsize(local)
        target = self.target(tenant_id, export_id, part)
        if is_local(target):
            os.makedirs(os.path.dirname(local_path(target)), exist_ok=True)
            shutil.move(local, local_path(target))
        else:
            with open(local, "rb") as src, self.table.io.new_output(target).create(overwrite=True) as dst:
                shutil.copyfileobj(src, dst, 8 << 20)
            os.unlink(local)
        stats = data_file_statistics_from_parquet_metadata(parquet_metadata=metadata, stats_columns=self.plan,
                                                           parquet_column_mapping=self.mapping)
        data_file = DataFile.from_args(
            content=DataFileContent.DATA, file_path=target, file_format=FileFormat.PARQUET,
            partition=stats.partition(self.spec, self.schema), file_size_in_bytes=size, sort_order_id=None,
            spec_id=self.spec_id, equality_ids=None, key_metadata=None, **stats.to_serialized_dict())
        return Placed(data_file, tenant_id, export_id, metadata.num_rows, size)


def batches_of_file(table: Table, data_file: DataFile) -> set[BatchId]:
    """The (tenant, export id) batches a data file holds: from its bounds when they name one batch
    (a published file holds exactly one), else by reading those two columns (a compacted file)."""
    schema = table.schema()
    bounds = []
    for name in ("tenant_id", "_export_id"):
        field_id = schema.find_field(name).field_id
        lo, hi = data_file.lower_bounds.get(field_id), data_file.upper_bounds.get(field_id)
        bounds.append(lo.decode() if lo is not None and lo == hi else None)
    if None not in bounds:
        return {(bounds[0], bounds[1])}
    with table.io.new_input(data_file.file_path).open() as stream:
        pairs = pq.read_table(stream, columns=["tenant_id", "_export_id"]).group_by(
            ["tenant_id", "_export_id"]).aggregate([])
    return set(zip(pairs["tenant_id"].to_pylist(), pairs["_export_id"].to_pylist(), strict=True))


class LocalCache:
    """Local copies of a lake's files in S3, for a reader that can only read local files (DuckDB
    here has no httpfs). A data file never changes once written (new data gets new names), so a copy
    is good while it exists with the same size; `prune` drops copies of files no current snapshot
    holds (after an erasure, the cache must not keep what the lake deleted)."""

    def __init__(self, root: str, io):
        self.root, self.io = root, io

    def path(self, location: str) -> str:
        return os.path.join(self.root, location.split("://", 1)[-1])

    def __call__(self, location: str, size: int | None = None) -> str:
        if is_local(location):
            return local_path(location)
        target = self.path(location)
        if not (os.path.exists(target) and (size is None or os.path.getsize(target) == size)):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            partial = f"{target}.{uuid.uuid4().hex[:8]}.part"
            with self.io.new_input(location).open() as src, open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst, 8 << 20)
            os.replace(partial, target)
        return target

    def prune(self, keep: set[str]) -> int:
        """Delete every cached copy not in `keep` (locations); returns how many went."""
        wanted = {self.path(k) for k in keep}
        removed = 0
        for folder, _, names in os.walk(self.root):
            for name in names:
                full = os.path.join(folder, name)
                if full not in wanted:
                    os.unlink(full)
                    removed += 1
        return removed
