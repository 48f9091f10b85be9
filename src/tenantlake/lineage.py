"""Lineage: Airflow Assets named the same way at every layer, and OpenLineage facets for the sync
operator and the warehouse load.

Asset names follow each layer's own names, under one scheme:

  tenantlake://landing/<tenant>/<Entity>        a tenant's exports as landed (landing's table=<Entity>)
  tenantlake://lake/<zone>/<entity>             an Iceberg table: raw, quarantine, protected, ops
  tenantlake://lake/published                   a tenant_exports run published something (the
                                                existing `tenantlake_lake`, warehouse_load's schedule)
  tenantlake://warehouse/<schema>/<table>       a warehouse table: core.current_debt, mart.agency_kpis_monthly

Lake tables are shared by every tenant, so tenant_exports records the lake tables its run wrote as
runtime events through an AssetAlias (`run_lake_events`, once per run), each naming the tenants and
rows in its extra; per-tenant landing assets stay names for lineage (declaring 2,000 x 8 of them at parse time
would need the registry at parse time).

OpenLineage: `sync_lineage` and `load_lineage` build the OperatorLineage an operator returns from
`get_openlineage_facets_on_complete` (the mixins below are exactly that method). Datasets are named
by where the data is, as OpenLineage's naming spec asks (s3://<bucket> or file, then the path;
the warehouse as redshift://<host>:<port> or duckdb://<file>, then schema.table), with the lake
tables' schemas, the rows written, and the tenant as a facet (`tenant`) on every dataset and on the
run (`tenantlake`). Events are sent by the OpenLineage provider's listener, which is off unless a
transport is configured ([openlineage] transport, e.g. AIRFLOW__OPENLINEAGE__TRANSPORT='{"type":
"file", "log_file_path": "/tmp/ol.jsonl", "append": true}'); nothing here sends anything.

Only Asset naming is imported at DAG parse time; OpenLineage's client (half a second, one more
for the provider) is imported when an event is built.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from airflow.sdk import Asset, AssetAlias

SCHEME = "tenantlake"
# OpenLineage wants each custom facet's JSON-schema URL; ours publish none yet, and a reserved
# domain says so rather than pointing at a page that does not exist.
FACET_SCHEMA = "https://tenantlake.invalid/openlineage/facets.json"
LAKE_ALIAS = AssetAlias(name="tenantlake_lake_tables")


# ---- Airflow Assets -----------------------------------------------------------------------------

def landing_asset(tenant_id: str, entity: str) -> Asset:
    return Asset(name=f"landing.{tenant_id}.{entity}", uri=f"{SCHEME}://landing/{tenant_id}/{entity}")


def lake_asset(zone: str, entity: str) -> Asset:
    return Asset(name=f"lake.{zone}.{entity.lower()}", uri=f"{SCHEME}://lake/{zone}/{entity.lower()}")


def warehouse_asset(schema: str, table: str) -> Asset:
    return Asset(name=f"warehouse.{schema}.{table}", uri=f"{SCHEME}://warehouse/{schema}/{table}")


def entity_tables(entity: str) -> list[tuple[str, str]]:
    """The warehouse tables a load of the entity writes (sql/core/current_entity.yml, history_entity.yml)."""
    return [("core", f"current_{entity.lower()}"), ("core", f"history_{entity.lower()}")]


def run_lake_events(outlet_events, summaries: Iterable[dict]) -> list[Asset]:
    """The run's lake-table events from its shards' summaries, one per table, naming every shard's
    tenants and rows. Emitted by one task per run (publish_signal): Airflow records an alias's
    events by creating its new assets and alias links on first use, and concurrent mapped tasks
    doing that collide on the tables' unique keys (a shard failed so in the services run)."""
    tables: dict[str, dict] = {}
    for s in summaries:
        tables.setdefault(s["entity"], {}).update(s["tables"])
    return [a for entity, t in sorted(tables.items()) for a in lake_events(outlet_events, entity, {"tables": t})]


def lake_events(outlet_events, entity: str, summary: dict) -> list[Asset]:
    """Record, on the operator's AssetAlias outlet, an event for each lake table the shard wrote,
    naming the tenants and rows; returns the assets (none when nothing was published)."""
    tables = {t: s for t, s in summary.get("tables", {}).items() if s.get("rows")}
    if not tables:
        return []
    extra = {"tenants": sorted(tables), "rows": sum(s["rows"] for s in tables.values())}
    zones = ["raw", "protected"] + (["quarantine"] if any(s.get("quarantined") for s in tables.values()) else [])
    assets = [lake_asset(zone, entity) for zone in zones]
    for asset in assets:
        outlet_events[LAKE_ALIAS].add(asset, extra=extra)
    return assets


# ---- OpenLineage -----------------------------------------------------------------------------------

@cache
def _facets():
    """Our two facets, defined on first use (the OpenLineage client is not imported at parse time)."""
    import attrs
    from openlineage.client.generated.base import DatasetFacet, RunFacet

    @attrs.define
    class TenantDatasetFacet(DatasetFacet):
        """The tenants whose data the dataset holds in this run, and their rows (when known)."""

        tenants: list[str] = attrs.field(factory=list)
        rows: dict[str, int] = attrs.field(factory=dict)

        @staticmethod
        def _get_schema() -> str:
            return f"{FACET_SCHEMA}#TenantDatasetFacet"

    @attrs.define
    class TenantlakeRunFacet(RunFacet):
        """What the run did, per tenant: the shard's label, entity, and tenants published / failed."""

        entity: str
        label: str = ""
        tenants: list[str] = attrs.field(factory=list)
        failed: list[str] = attrs.field(factory=list)
        rows: int = 0
        quarantined: int = 0

        @staticmethod
        def _get_schema() -> str:
            return f"{FACET_SCHEMA}#TenantlakeRunFacet"

    return TenantDatasetFacet, TenantlakeRunFacet


def location(url: str) -> tuple[str, str]:
    """(namespace, name) of a place in storage, as OpenLineage names files: s3://bucket + the key
    (the provider's own S3 datasets drop the leading slash too), or file + the absolute path."""
    if url.startswith("s3://"):
        bucket, _, path = url[5:].partition("/")
        return f"s3://{bucket}", path.strip("/")
    from pathlib import Path

    return "file", str(Path(url).resolve())


def _schema_facet(zone: str, entity: str):
    from openlineage.client.generated.schema_dataset import SchemaDatasetFacet, SchemaDatasetFacetFields

    from tenantlake.lake.catalog import arrow_schema

    try:
        schema = arrow_schema(zone, entity)
    except KeyError:  # an entity without a contract has no protected table
        return None
    return SchemaDatasetFacet(fields=[SchemaDatasetFacetFields(name=f.name, type=str(f.type)) for f in schema])


def lake_dataset(kind: str, lake_url: str, namespace_prefix: str, zone: str, entity: str, rows: dict[str, int]):
    """An Input or OutputDataset for a lake table, with its schema and the tenant facet."""
    from openlineage.client.generated.base import InputDataset, OutputDataset
    from openlineage.client.generated.output_statistics_output_dataset import OutputStatisticsOutputDatasetFacet

    tenant_facet, _ = _facets()
    namespace, root = location(lake_url)
    name = "/".join(p for p in (root.rstrip("/"), f"{namespace_prefix}_{zone}", entity.lower()) if p)
    facets = {"tenant": tenant_facet(tenants=sorted(rows), rows=dict(sorted(rows.items())))}
    schema = _schema_facet(zone, entity)
    if schema is not None:
        facets["schema"] = schema
    if kind == "input":
        return InputDataset(namespace=namespace, name=name, facets=facets)
    statistics = OutputStatisticsOutputDatasetFacet(rowCount=sum(rows.values()))
    return OutputDataset(namespace=namespace, name=name, facets=facets, outputFacets={"outputStatistics": statistics})


def sync_lineage(shard: dict, summary: dict | None, *, landing_url: str, lake_url: str,
                 namespace_prefix: str = "tenantlake"):
    """The OperatorLineage of one tenant_exports shard: each tenant's landed exports in, the
    entity's lake tables out (raw, protected, and quarantine when rows went there)."""
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.generated.base import InputDataset

    from tenantlake.entities import ENTITY_NAMES

    tenant_facet, run_facet = _facets()
    entity, tenants = shard["entity"], list(shard.get("tenants") or [])
    if entity not in ENTITY_NAMES:  # a shard standing for a registry problem ("-"): it touched no data
        return OperatorLineage(run_facets={"tenantlake": run_facet(entity=entity, label=shard.get("label", ""),
                                                                   tenants=tenants, failed=tenants)})
    tables = (summary or {}).get("tables", {})
    published = {t: s.get("rows") or 0 for t, s in tables.items() if not s.get("error")}
    quarantined = {t: s.get("quarantined") or 0 for t, s in tables.items() if s.get("quarantined")}
    landing_ns, landing_root = location(landing_url)
    inputs = [InputDataset(namespace=landing_ns,
                           name="/".join(p for p in (landing_root.rstrip("/"), f"tenant={t}", f"table={entity}") if p),
                           facets={"tenant": tenant_facet(tenants=[t])}) for t in tenants]
    outputs = [lake_dataset("output", lake_url, namespace_prefix, zone, entity, published)
               for zone in ("raw", "protected")]
    if quarantined:
        outputs.append(lake_dataset("output", lake_url, namespace_prefix, "quarantine", entity, quarantined))
    run = run_facet(entity=entity, label=shard.get("label", ""), tenants=tenants,
                    failed=sorted(t for t, s in tables.items() if s.get("error")),
                    rows=sum(published.values()), quarantined=sum(quarantined.values()))
    return OperatorLineage(inputs=inputs, outputs=outputs, run_facets={"tenantlake": run})


def warehouse_namespace(kind: str, where: str) -> str:
    """redshift://<host>:<port> (OpenLineage's naming for Redshift) or duckdb://<file>."""
    return f"redshift://{where}" if kind == "redshift" else f"duckdb://{where}"


def load_lineage(outcomes: Iterable, *, lake_url: str, warehouse: str, warehouse_where: str,
                 database: str = "", namespace_prefix: str = "tenantlake"):
    """The OperatorLineage of a warehouse load: each entity's protected lake table in, its core
    tables out, with the tenants and rows loaded. `outcomes` are the load's BatchOutcomes (or
    dicts / tuples with tenant_id, entity, status, rows)."""
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.generated.base import OutputDataset
    from openlineage.client.generated.output_statistics_output_dataset import OutputStatisticsOutputDatasetFacet

    tenant_facet, run_facet = _facets()
    per_entity: dict[str, dict[str, int]] = {}
    for o in outcomes:
        tenant_id, entity, status, rows = _outcome(o)
        if status == "loaded":
            by_tenant = per_entity.setdefault(entity, {})
            by_tenant[tenant_id] = by_tenant.get(tenant_id, 0) + rows
    inputs, outputs = [], []
    namespace = warehouse_namespace(warehouse, warehouse_where)
    for entity, rows in sorted(per_entity.items()):
        inputs.append(lake_dataset("input", lake_url, namespace_prefix, "protected", entity, rows))
        for schema, table in entity_tables(entity):
            name = ".".join(p for p in (database, schema, table) if p)
            outputs.append(OutputDataset(
                namespace=namespace, name=name,
                facets={"tenant": tenant_facet(tenants=sorted(rows), rows=dict(sorted(rows.items())))},
                outputFacets={"outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=sum(rows.values()))}))
    tenants = sorted({t for rows in per_entity.values() for t in rows})
    run = run_facet(entity=",".join(sorted(per_entity)), label="warehouse load", tenants=tenants,
                    rows=sum(sum(r.values()) for r in per_entity.values()))
    return OperatorLineage(inputs=inputs, outputs=outputs, run_facets={"tenantlake": run})


def _outcome(o) -> tuple[str, str, str, int]:
    if isinstance(o, dict):
        return o["tenant_id"], o["entity"], o["status"], int(o.get("rows") or 0)
    if isinstance(o, tuple | list):
        return o[0], o[1], o[2], int(o[3] or 0)
    return o.tenant_id, o.entity, o.status, int(o.rows or 0)


# ---- what the operators add ------------------------------------------------------------------------

def _settings():
    from tenantlake.registry import load_registry
    from tenantlake.settings import Settings

    return Settings.from_env(load_registry().landing_bucket)


class SyncShardLineage:
    """`get_openlineage_facets_on_complete` for SyncShardOperator: reads `self.shard` and the
    summary `_ingest` leaves in `self.lineage_summary`. Also used on failure (what published
    before the failure is still lineage)."""

    def get_openlineage_facets_on_complete(self, task_instance):
        s = _settings()
        return sync_lineage(self.shard, getattr(self, "lineage_summary", None), landing_url=s.landing,
                            lake_url=s.lake, namespace_prefix=s.namespace)

    def get_openlineage_facets_on_failure(self, task_instance):
        return self.get_openlineage_facets_on_complete(task_instance)


class WarehouseLoadLineage:
    """`get_openlineage_facets_on_complete` for the warehouse load: reads the load's batch
    outcomes from `self.lineage_outcomes` (set by its execute)."""

    def get_openlineage_facets_on_complete(self, task_instance):
        import os

        s = _settings()
        kind, database = os.environ.get("TENANTLAKE_WAREHOUSE", "duckdb"), ""
        if kind == "redshift":  # the connection warehouse_load uses (tenantlake.loading)
            from airflow.sdk import BaseHook

            conn = BaseHook.get_connection(os.environ.get("TENANTLAKE_REDSHIFT_CONN", "redshift_default"))
            where, database = f"{conn.host}:{conn.port or 5439}", conn.schema or ""
        else:
            where = f"{s.home}/warehouse.duckdb"
        return load_lineage(getattr(self, "lineage_outcomes", ()), lake_url=s.lake, warehouse=kind,
                            warehouse_where=where, database=database, namespace_prefix=s.namespace)
