"""The lake's Apache Iceberg tables, and the catalog that holds them.

Zones are Iceberg namespaces (Glue databases in production), `<prefix>_<zone>`:

  raw         every entity as decoded, clear values: the restricted zone
  quarantine  rows set aside, each with its reason and the original item: restricted too
  protected   every entity past raw (tenantlake.privacy): what the warehouse and analysts read
  ops         the batch log: each batch's outcome, its quality result and the drift it showed

Entity tables are format v2 and partitioned by `tenant_id` (identity) and the day of the row's
event time (quarantine by tenant only; the small ops logs not at all), so a tenant's data is
whole partitions (offboarding deletes them without rewriting a file) and Spectrum, Athena and
DuckDB prune by tenant and day. Every column is optional in Iceberg
(a promoted attribute can only be added as optional, and readers fill files written before it
with nulls). Files are written by our own Parquet writer without field ids; the table's default
name mapping resolves their columns by name, which is also why columns are only ever added,
never renamed.

The catalog is chosen by TENANTLAKE_CATALOG: `sql` (the default in local mode) is a SQLite
catalog, by default <lake>/_catalog/iceberg.db for a local lake or <home>/iceberg-catalog.db for a
lake in S3 (TENANTLAKE_CATALOG_URI overrides it); `glue` (the default in aws mode) is the Glue
Data Catalog, reached with a client from the Airflow AWS connection like every other AWS client.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform, IdentityTransform
from sqlalchemy.exc import IntegrityError, OperationalError
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from tenantlake.contracts import ENTITIES
from tenantlake.formats.rows import QUARANTINE_SCHEMA, lake_schema
from tenantlake.privacy import protected_schema

# pyiceberg says "Defaulting to PyArrow FileIO" at INFO for every table it opens: thousands of
# lines per run in task logs, none of them news.
logging.getLogger("pyiceberg.io").setLevel(logging.WARNING)

ZONES = ("raw", "quarantine", "protected", "ops")
ENTITY_ZONES = ("raw", "quarantine", "protected")
PARTITION_DAY = "event_day"
BATCH_LOG = "batches"

# What the quarantine adds to the decoder's quarantine rows: who the item belongs to, for erasure.
QUARANTINE_LAKE_SCHEMA = pa.schema([
    *QUARANTINE_SCHEMA,
    pa.field("_item_id", pa.string()),  # the item's id, when it could be read
    pa.field("_consumer_id", pa.string()),  # the consumer it refers to, when it could be read
    pa.field("_quarantined_at", pa.timestamp("us", tz="UTC")),
])

# One row per batch attempt: what it was, what became of it, its audit and its drift.
BATCH_LOG_SCHEMA = pa.schema([
    pa.field("tenant_id", pa.string()),
    pa.field("entity", pa.string()),
    pa.field("export_id", pa.string()),
    pa.field("kind", pa.string()),
    pa.field("source", pa.string()),  # the manifest-summary or stream file it came from
    pa.field("run_id", pa.string()),
    pa.field("outcome", pa.string()),  # published | failed
    pa.field("reason", pa.string()),  # why it failed (no data values, never PII)
    pa.field("items", pa.int64()),  # as the manifest lists them (stream files: records read)
    pa.field("rows", pa.int64()),  # published to raw
    pa.field("quarantined", pa.int64()),
    pa.field("erased", pa.int64()),  # rows of erased consumers dropped at ingest
    pa.field("inferred_deletes", pa.int64()),  # removes a full re-snapshot implied (in `rows`)
    pa.field("files", pa.int32()),
    pa.field("bytes_exported", pa.int64()),  # the export's billedSizeBytes when known
    pa.field("bytes_stored", pa.int64()),  # Parquet bytes written to raw and protected
    pa.field("export_time", pa.timestamp("us", tz="UTC")),  # full: ExportTime; incremental: window end
    pa.field("window_from", pa.timestamp("us", tz="UTC")),  # incremental: window start
    pa.field("min_event_ts", pa.timestamp("us", tz="UTC")),
    pa.field("max_event_ts", pa.timestamp("us", tz="UTC")),
    pa.field("seconds", pa.float64()),
    pa.field("quality", pa.string()),  # the audit's outcome and GX result as JSON, PII removed
    pa.field("drift", pa.string()),  # JSON list of the drift observed: path, type, what, rows, first, last
    pa.field("logged_at", pa.timestamp("us", tz="UTC")),
])

# Erasure requests, keyed by pseudonym: no clear consumer id is ever stored (tenantlake.lifecycle).
ERASURES_SCHEMA = pa.schema([
    pa.field("tenant_id", pa.string()),
    pa.field("consumer_key", pa.string()),
    pa.field("requested_at", pa.timestamp("us", tz="UTC")),
    pa.field("completed_at", pa.timestamp("us", tz="UTC")),
    pa.field("removed", pa.string()),  # JSON: rows removed per layer
])
OPS_TABLES = {BATCH_LOG: BATCH_LOG_SCHEMA, "erasures": ERASURES_SCHEMA}

_PROPERTIES = {
    "format-version": "2",
    # Manifests of many small commits are merged as they accumulate, so planning stays cheap.
    "commit.manifest-merge.enabled": "true",
    # Manifests keep value counts only, never values: bounds of a name or an email column would
    # put personal data into metadata that erasure could not reach. Full bounds for the columns a
    # batch is recognised by and pruned by (string bounds are cut to 16 characters by default).
    "write.metadata.metrics.default": "counts",
    "write.metadata.metrics.column.tenant_id": "full",
    "write.metadata.metrics.column._export_id": "full",
    "write.metadata.metrics.column._event_ts": "full",
    # Old metadata files go as new ones are written, so expired snapshots leave no trace behind.
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "10",
    "write.parquet.compression-codec": "snappy",
}
# An entity table's commits are not rebased by pyiceberg itself: on a concurrent commit it would
# append the same batch again on top of the run that published it meanwhile (two runs of one tenant
# at once held every row twice: independent probe). The conflict reaches our own retries instead,
# each of which looks at the new snapshot first (publish.append_new_batches asks which batches it
# holds by then).
NO_REBASE = {"commit.retry.num-retries": "0"}


def _properties(zone: str) -> dict[str, str]:
    return {**_PROPERTIES, **NO_REBASE} if zone in ENTITY_ZONES else _PROPERTIES


def arrow_schema(zone: str, entity: str) -> pa.Schema:
    """The Arrow schema of a zone's table for an entity (from the contracts, so a promoted
    attribute appears here the day it is declared)."""
    if zone == "ops":
        if entity not in OPS_TABLES:
            raise KeyError(f"no ops table {entity!r}; ops tables: {', '.join(OPS_TABLES)}")
        return OPS_TABLES[entity]
    contract = ENTITIES.get(entity)
    if zone == "raw":
        return lake_schema(contract)
    if zone == "quarantine":
        return QUARANTINE_LAKE_SCHEMA
    if zone == "protected":
        if contract is None:
            raise KeyError(f"{entity}: no contract, so no protected table (it stays in raw)")
        return protected_schema(contract, lake_schema(contract))
    raise KeyError(f"unknown zone {zone!r}; zones: {', '.join(ZONES)}")


def _optional(schema: pa.Schema) -> pa.Schema:
    def relax(t: pa.DataType) -> pa.DataType:
        if pa.types.is_struct(t):
            return pa.struct([f.with_nullable(True).with_type(relax(f.type)) for f in t])
        if pa.types.is_list(t):
            return pa.list_(relax(t.value_type))
        return t
    return pa.schema([f.with_nullable(True).with_type(relax(f.type)) for f in schema])


def _grows(current: pa.Schema | pa.StructType, want: pa.Schema | pa.StructType) -> bool:
    """Whether `want` holds a column, or a field of a struct column, that `current` lacks."""
    have = {f.name: f.type for f in current}
    for f in want:
        if f.name not in have:
            return True
        if pa.types.is_struct(f.type) and pa.types.is_struct(have[f.name]) and _grows(have[f.name], f.type):
            return True
        if (pa.types.is_list(f.type) and pa.types.is_list(have[f.name]) and pa.types.is_struct(f.type.value_type)
                and pa.types.is_struct(have[f.name].value_type) and _grows(have[f.name].value_type, f.type.value_type)):
            return True
    return False


def _spec(zone: str, schema: Schema) -> PartitionSpec:
    if zone == "ops":  # small logs of many tenants: one file per commit, not one per tenant
        return PartitionSpec()
    fields = [PartitionField(schema.find_field("tenant_id").field_id, 1000, IdentityTransform(), "tenant_id")]
    if zone in ("raw", "protected"):
        fields.append(PartitionField(schema.find_field("_event_ts").field_id, 1001, DayTransform(), PARTITION_DAY))
    return PartitionSpec(*fields)


@dataclass(frozen=True)
class LakeConfig:
    root: str  # where table data lives: a local folder or s3://bucket/prefix
    prefix: str = "tenantlake"  # namespaces are <prefix>_<zone>


class Lake:
    """The lake's tables: created on first use with their schema, spec and properties, and
    evolved additively when a contract gains an attribute."""

    def __init__(self, catalog: Catalog, config: LakeConfig):
        self.catalog, self.config = catalog, config
        self._tables: dict[tuple[str, str], Table] = {}
        self._known: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def namespace(self, zone: str) -> str:
        if zone not in ZONES:
            raise KeyError(f"unknown zone {zone!r}; zones: {', '.join(ZONES)}")
        return f"{self.config.prefix}_{zone}"

    def identifier(self, zone: str, entity: str) -> str:
        return f"{self.namespace(zone)}.{entity.lower()}"

    def location(self, zone: str, entity: str) -> str:
        return f"{self.config.root.rstrip('/')}/{self.namespace(zone)}/{entity.lower()}"

    def table(self, zone: str, entity: str, refresh: bool = False) -> Table:
        """The zone's table for the entity: created if missing and evolved to the contract the first
        time this process opens it; `refresh` reads its newest metadata (another task may have
        committed since)."""
        key = (zone, entity)
        with self._lock:
            if key not in self._tables:
                self._tables[key] = self.evolve(zone, entity)
            elif refresh:
                self._tables[key] = self.catalog.load_table(self.identifier(zone, entity))
            self._known.add(key)
            return self._tables[key]

    def load(self, zone: str, entity: str) -> Table:
        """The table as it is, neither created nor evolved (deletes and readers of any table,
        tables of uncontracted entities included)."""
        return self.catalog.load_table(self.identifier(zone, entity))

    def exists(self, zone: str, entity: str) -> bool:
        """Whether the table exists (a table once seen is not asked about again: tables are dropped
        by no one but an operator)."""
        if (zone, entity) in self._known:
            return True
        found = self.catalog.table_exists(self.identifier(zone, entity))
        if found:
            self._known.add((zone, entity))
        return found

    # Tasks of one run open the same new table at the same time: the one whose create or schema
    # update loses starts again from what the winner made, which then needs nothing or only what
    # the winner did not add. A catalog refuses the loser's table as a failed commit; the SQL
    # catalog refuses a namespace created meanwhile with its own unique key (IntegrityError).
    @retry(retry=retry_if_exception_type((CommitFailedException, IntegrityError)), stop=stop_after_attempt(6),
           wait=wait_random_exponential(multiplier=0.05, max=2), reraise=True)
    def evolve(self, zone: str, entity: str) -> Table:
        """The table, created if missing, with every column and struct field the contract declares
        (a contract changes with a deploy, so a process evolves each table once, when it first
        opens it; promotion asks again)."""
        want = _optional(arrow_schema(zone, entity))
        identifier = self.identifier(zone, entity)
        try:
            table = self.catalog.load_table(identifier)
        except NoSuchTableError:
            table = self._create(zone, entity, want)
        if zone in ENTITY_ZONES and any(table.properties.get(k) != v for k, v in NO_REBASE.items()):
            with table.transaction() as tx:  # a table made before NO_REBASE
                tx.set_properties(NO_REBASE)
            table = self.catalog.load_table(identifier)
        if _grows(table.schema().as_arrow(), want):
            # Additive only: union_by_name adds new columns and new fields of structs, and refuses a
            # changed type (a contract may never change a column's type in place).
            with table.update_schema() as update:
                update.union_by_name(want)
            table = self.catalog.load_table(identifier)
        self._tables[(zone, entity)] = table
        return table

    def _create(self, zone: str, entity: str, schema: pa.Schema) -> Table:
        try:
            self.catalog.create_namespace(self.namespace(zone))
        except NamespaceAlreadyExistsError:
            pass
        identifier = self.identifier(zone, entity)
        try:
            tx = self.catalog.create_table_transaction(identifier, schema=schema,
                                                      location=self.location(zone, entity),
                                                      properties=_properties(zone))
            iceberg_schema = tx.table_metadata.schema()
            with tx.update_spec() as spec:
                for field in _spec(zone, iceberg_schema).fields:
                    source = iceberg_schema.find_column_name(field.source_id)
                    spec.add_field(source, field.transform, field.name)
            tx.set_properties({"schema.name-mapping.default": iceberg_schema.name_mapping.model_dump_json()})
            tx.commit_transaction()
        except TableAlreadyExistsError:  # created meanwhile by another task, seen before the commit
            # (seen at the commit, it is a CommitFailedException: evolve starts again)
            pass
        return self.catalog.load_table(identifier)

    def entities(self, zone: str) -> list[str]:
        """The entities that have a table in the zone."""
        try:
            return sorted(name for _, name in self.catalog.list_tables(self.namespace(zone)))
        except Exception:  # noqa: BLE001 - a namespace that does not exist yet holds no tables
            return []


def open_catalog(kind: str, *, uri: str | None = None, warehouse: str | None = None, glue_client=None,
                 io_properties: dict | None = None) -> Catalog:
    """A SQL (SQLite) catalog or the Glue Data Catalog, with the FileIO properties that reach the
    lake's storage (S3 endpoint, region and credentials from the Airflow connection)."""
    props = dict(io_properties or {})
    if kind == "sql":
        from pyiceberg.catalog.sql import SqlCatalog

        if uri is None:
            raise ValueError("a SQL catalog needs a URI (TENANTLAKE_CATALOG_URI)")
        if uri.startswith("sqlite:///"):
            os.makedirs(os.path.dirname(uri.removeprefix("sqlite:///")) or ".", exist_ok=True)
        # A new catalog's first users each find its tables missing and create them: the losers'
        # CREATE TABLE fails ('already exists'), and opening it again finds the tables there.
        opening = retry(retry=retry_if_exception_type(OperationalError), stop=stop_after_attempt(5),
                        wait=wait_random_exponential(multiplier=0.05, max=1), reraise=True)(SqlCatalog)
        return opening("tenantlake", uri=uri, warehouse=warehouse or "", **props)
    if kind == "glue":
        from pyiceberg.catalog.glue import GlueCatalog

        return GlueCatalog("tenantlake", client=glue_client, **props)
    raise ValueError(f"TENANTLAKE_CATALOG={kind!r}: expected sql or glue")
