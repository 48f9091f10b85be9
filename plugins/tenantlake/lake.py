"""The Parquet lake and its Write-Audit-Publish protocol.

    staging/<run>/<entity>/tenant_id=<id>/export_id=<eid>/part-NNNNN.parquet   written, unseen
    raw/<entity>/tenant_id=<id>/export_date=<day>/<eid>-part-NNNNN.parquet      published
    raw/<entity>/tenant_id=<id>/_commits/<eid>.json                             the commit marker
    quarantine/<entity>/tenant_id=<id>/export_date=<day>/<eid>.parquet          rows set aside

A batch is readable only once its commit marker exists: the warehouse loads (COPY manifests, the
DuckDB views) list files from markers, never from folders. Names derive from the export id, so
publishing the same export again replaces its files instead of adding to them. Spectrum skips
names starting with '_', which keeps the markers out of the external tables.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from tenantlake.storage import Store

# Spectrum reads files in parallel, one split per row group; files of 64 MB to 1 GB are its
# sweet spot. A batch rolls to a new file past this many rows (about 100-250 MB of Parquet).
ROWS_PER_FILE = 2_000_000


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


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


class StagedWriter:
    """Streams a batch's tables into staged Parquet files of at most ROWS_PER_FILE rows, so memory
    holds one file's worth however large the export is."""

    def __init__(self, store: Store, prefix: str, schema: pa.Schema, rows_per_file: int = ROWS_PER_FILE):
        self.store, self.prefix, self.schema, self.rows_per_file = store, prefix, schema, rows_per_file
        self.files: list[dict] = []
        self._sink: io.BytesIO | None = None
        self._writer: pq.ParquetWriter | None = None
        self._rows = 0

    def write(self, table: pa.Table) -> None:
        while table.num_rows:
            if self._writer is None:
                self._sink = io.BytesIO()
                self._writer = pq.ParquetWriter(self._sink, self.schema, compression="snappy")
                self._rows = 0
            take = min(table.num_rows, self.rows_per_file - self._rows)
            self._writer.write_table(table.slice(0, take))
            self._rows += take
            table = table.slice(take)
            if self._rows >= self.rows_per_file:
                self._flush()

    def _flush(self) -> None:
        self._writer.close()
        key = f"{self.prefix}/part-{len(self.files):05d}.parquet"
        body = self._sink.getvalue()
        self.store.put(key, body)
        self.files.append({"key": key, "rows": self._rows, "bytes": len(body)})
        self._writer = self._sink = None

    def close(self) -> list[dict]:
        if self._writer is not None:
            self._flush()
        return self.files


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
