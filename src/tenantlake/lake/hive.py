"""The Parquet lake and its Write-Audit-Publish protocol.

    staging/<run>/<entity>/tenant_id=<id>/export_id=<eid>/part-NNNNN.parquet   written, unseen
    raw/<entity>/tenant_id=<id>/export_date=<day>/<eid>-part-NNNNN.parquet      published
    raw/<entity>/tenant_id=<id>/_commits/<eid>.json                             the commit marker
    quarantine/<entity>/tenant_id=<id>/export_date=<day>/<eid>.parquet          rows set aside

One Parquet file per export data file (DynamoDB writes one or more per table partition, tens to
hundreds of MB), with a row group per ~32 MB of decoded text: sizes Spectrum splits well, and no
swarm of tiny files. A batch is readable only once its commit marker exists: the warehouse loads
(COPY manifests, the DuckDB views) list files from markers, never from folders. Names derive from
the export id, so publishing the same export again replaces its files instead of adding to them.
Spectrum skips names starting with '_', which keeps the markers out of the external tables.
"""

from __future__ import annotations

import functools
import io
from dataclasses import asdict, dataclass, field

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tenantlake.storage import Store


@dataclass(frozen=True)
class BatchKey:
    tenant_id: str
    entity: str
    export_id: str
    export_date: str  # YYYY-MM-DD

    @property
    def partition(self) -> str:
        return f"raw/{self.entity}/tenant_id={self.tenant_id}/export_date={self.export_date}"

    @property
    def commit_key(self) -> str:
        return f"raw/{self.entity}/tenant_id={self.tenant_id}/_commits/{self.export_id}.json"

    @property
    def quarantine_key(self) -> str:
        return (f"quarantine/{self.entity}/tenant_id={self.tenant_id}/export_date={self.export_date}/"
                f"{self.export_id}.parquet")

    def staging_prefix(self, run_id: str) -> str:
        return f"staging/{run_id}/{self.entity}/tenant_id={self.tenant_id}/export_id={self.export_id}"


@dataclass
class Commit:
    """The marker's content: what the batch is and which files hold it."""

    tenant_id: str
    entity: str
    export_id: str
    export_date: str
    kind: str
    source: str  # the manifest-summary (or stream file) it came from
    rows: int
    quarantined: int
    files: list[dict] = field(default_factory=list)  # {"key", "rows", "bytes"}
    min_event_ts: int | None = None  # epoch microseconds
    max_event_ts: int | None = None
    quality: dict = field(default_factory=dict)  # rows the audit set aside (warnings: _quality/)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


# 2,000 rows choose as 10,000 did for all but two borderline columns of the 8 entities' parts (a 4M
# fleet's), in a quarter of the time: a small part's whole write cost ~4 ms more with 10,000.
DICTIONARY_SAMPLE = 2_000
# Below this a part is written without dictionaries: its pages are tiny either way, and choosing the
# columns took a fifth of a tiny part's write (1.84 -> 1.46 ms per staged file of a tiny fleet's batch).
DICTIONARY_MIN_ROWS = 256


def dictionary_columns(table: pa.Table) -> list[str]:
    """The leaf columns (as Parquet names them) worth dictionary encoding: those with few distinct
    values in the first rows. Ids, pseudonyms and timestamps are not: Parquet's writer would build
    their dictionary until it overflows and then fall back, costing a third of the write time for
    a larger file (measured on a Debt part: 0.094 s and 8.9 MB by default, 0.065 s and 8.2 MB so)."""
    if table.num_rows < DICTIONARY_MIN_ROWS:
        return []
    sample = table.slice(0, DICTIONARY_SAMPLE)
    return [name for name, values in _leaves(sample.columns, sample.column_names)
            if pc.count_distinct(values).as_py() * 10 <= len(values)]


# Columns whose min/max bound nothing a reader filters on: `_extra` is JSON text (its statistics
# were 8% of a drifting part's write).
NO_STATISTICS = {"_extra"}


@functools.lru_cache(maxsize=64)
def statistics_columns(schema: pa.Schema) -> tuple[str, ...]:
    """The leaf columns (as Parquet names them) given min/max statistics: all but NO_STATISTICS.
    Cached per schema: walking one took ~1 ms, most of a tiny part's write."""
    empty = schema.empty_table()
    return tuple(name for name, _ in _leaves(empty.columns, empty.column_names) if name not in NO_STATISTICS)


def _leaves(columns, names):
    for name, values in zip(names, columns, strict=True):
        values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        if pa.types.is_struct(values.type):
            yield from _leaves([values.field(i) for i in range(values.type.num_fields)],
                               [f"{name}.{f.name}" for f in values.type])
        elif pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
            yield from _leaves([values.flatten()], [f"{name}.list.element"])
        else:
            yield name, values


class PartWriter:
    """Appends tables to one local Parquet file (a row group each) until closed; the file is
    handed to the store whole. Used where the rows are decoded, so they never cross processes."""

    def __init__(self, path: str, schema: pa.Schema):
        self.path, self.schema, self.rows = path, schema, 0
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.path, self.schema, compression="snappy",
                                                use_dictionary=dictionary_columns(table),
                                                write_statistics=list(statistics_columns(self.schema)))
            self._writer.write_table(table)
            self.rows += table.num_rows

    def close(self) -> str | None:
        """The file's path, or None when no row was written (no empty files reach the lake)."""
        if self._writer is None:
            return None
        self._writer.close()
        return self.path


def publish(store: Store, batch: BatchKey, commit: Commit, staged: list[dict],
            quarantine: pa.Table | None) -> Commit:
    """Move a staged batch into raw/ and write its marker; replaces an earlier publish of it."""
    mine = batch.export_id + "-"
    old = [k for k in store.list(batch.partition + "/") if k.rsplit("/", 1)[-1].startswith(mine)]
    published = []
    for i, f in enumerate(staged):
        key = f"{batch.partition}/{batch.export_id}-part-{i:05d}.parquet"
        store.move(f["key"], key)
        published.append({**f, "key": key})
    for key in set(old) - {f["key"] for f in published}:
        store.delete_prefix(key)  # a rerun that wrote fewer files leaves none of the old ones
    if quarantine is not None and quarantine.num_rows:
        store.put(batch.quarantine_key, parquet_bytes(quarantine))
    else:
        store.delete_prefix(batch.quarantine_key)
    commit.files = published
    store.put(batch.commit_key, orjson.dumps(asdict(commit), option=orjson.OPT_INDENT_2))
    return commit


def commits(store: Store, entity: str, tenant_id: str | None = None) -> list[Commit]:
    """The published batches of an entity (optionally one tenant's), oldest export first."""
    base = f"raw/{entity}/" + (f"tenant_id={tenant_id}/" if tenant_id else "")
    keys = [k for k in store.list(base) if "/_commits/" in k and k.endswith(".json")]
    found = [Commit(**orjson.loads(store.get(k))) for k in keys]
    return sorted(found, key=lambda c: (c.tenant_id, c.export_id))


def read_committed(store: Store, entity: str, tenant_id: str | None = None) -> pa.Table | None:
    """Every committed row of an entity, as one table (tests, the CLI, small lakes)."""
    tables = [pq.read_table(io.BytesIO(store.get(f["key"]))) for c in commits(store, entity, tenant_id)
              for f in c.files]
    return pa.concat_tables(tables) if tables else None
