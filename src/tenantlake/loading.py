"""What warehouse_load's tasks do: hand the lake's new batches to the warehouse, refresh, check.

The warehouse is chosen at run time: TENANTLAKE_WAREHOUSE = duckdb (the embedded default, a file
at $TENANTLAKE_HOME/warehouse.duckdb, whose memory TENANTLAKE_WAREHOUSE_MEMORY bounds, default
384MB: past it DuckDB spills to disk) or redshift (the Airflow connection in
TENANTLAKE_REDSHIFT_CONN, default redshift_default, and TENANTLAKE_COPY_ROLE for COPY).

The steps, each one function (a DAG may run them as one task or as visible steps):
  register_lake   the lake's current files for lake.* / lake_protected.* (DuckDB; Redshift reads Glue)
  load            every batch published since the last run, set-based, per entity
  refresh         dimensions, facts and marts for what changed (full=True: all of it)
  checks          the post-load checks for the tenants the load touched (not retried)
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from tenantlake.settings import Settings

# DuckDB's own default is 80% of the machine: an Airflow worker shares it. The bound is what keeps
# memory flat as the data grow (benchmarks/pipeline_end_to_end.py, one machine, same files):
#   bound   1M items: peak, load    4M items: peak, load
#   768MB   ~650 MiB               1,035 MiB (the 4M load at the bound), 32.6 s
#   512MB    636 MiB, 9.9 s          785 MiB, 31.1 s
#   384MB    621 MiB, 9.8 s          672 MiB, 31.5 s   <- +8% from 1M to 4M
#   384MB, and the load free of insertion order (DuckDBWarehouse.load): 616 MiB, 8.6 s; 664 MiB, 20.4 s
#   256MB                            546 MiB, 38.7 s   (spills: slower; it still ran, so 384MB has room)
# (An older refresh ran out of memory at 512MB; the present one narrows a first refresh to nothing.)
DUCKDB_MEMORY = "384MB"


def open_warehouse(settings: Settings, manifests=None, lake=None):
    kind = os.environ.get("TENANTLAKE_WAREHOUSE", "duckdb")
    if kind == "duckdb":
        from tenantlake.warehouse.duckdb import DuckDBWarehouse

        os.makedirs(settings.home, exist_ok=True)  # with a lake in S3, nothing else may have made it
        local_copy = None
        if settings.lake.startswith("s3://") and lake is not None:
            from pyiceberg.io import load_file_io

            from tenantlake.lake.files import LocalCache

            local_copy = LocalCache(f"{settings.home}/lake-cache", load_file_io(lake.catalog.properties, settings.lake))
        memory = os.environ.get("TENANTLAKE_WAREHOUSE_MEMORY", DUCKDB_MEMORY)
        try:
            return DuckDBWarehouse(f"{settings.home}/warehouse.duckdb", local_copy=local_copy, memory_limit=memory,
                                   sql_cache=f"{settings.home}/sql-cache")
        except ValueError as e:
            raise ValueError(f"TENANTLAKE_WAREHOUSE_MEMORY: {e}") from None
    if kind == "redshift":
        from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

        from tenantlake.warehouse.redshift import RedshiftWarehouse

        hook = RedshiftSQLHook(redshift_conn_id=os.environ.get("TENANTLAKE_REDSHIFT_CONN", "redshift_default"))
        return RedshiftWarehouse(hook.get_conn, settings.lake, os.environ["TENANTLAKE_COPY_ROLE"], manifests,
                                 sql_cache=f"{settings.home}/sql-cache")
    raise ValueError(f"TENANTLAKE_WAREHOUSE={kind!r}: expected duckdb or redshift")


@contextmanager
def _session(runtime=None):
    from tenantlake.connections import runtime as airflow_runtime

    rt = runtime or airflow_runtime()
    wh = open_warehouse(rt.settings, rt.state, rt.lake)
    try:
        yield rt, wh
    finally:
        wh.close()


def register_lake(runtime=None) -> None:
    from tenantlake.warehouse import lake_source

    with _session(runtime) as (rt, wh):
        wh.register_lake(*lake_source.current_files(rt.lake))


def load(runtime=None, outcomes: list | None = None) -> dict:
    """Every batch published since the last run; returns the counts, the failures with their
    reasons and the tenants the load touched (for the checks). `outcomes` receives each batch's
    BatchOutcome (OpenLineage's view of the load)."""
    from tenantlake.warehouse import lake_source

    with _session(runtime) as (rt, wh):
        batches, cursors = lake_source.new_batches(rt.lake, wh)
        report = wh.load(batches, cursors=cursors)
    if outcomes is not None:
        outcomes.extend(report.outcomes)
    return {**report.summary(), "tenants": sorted(report.tenants), "batches": len(batches)}


def refresh(runtime=None, full: bool = False, schemas: list[str] | None = None, with_ops: bool = False) -> dict:
    """Dimensions, facts and marts for what changed (`full`: all of it); `with_ops` also refills
    the ops tables of tenant health and cost (tenantlake.ops) from the lake."""
    with _session(runtime) as (rt, wh):
        reference = None
        if with_ops:
            from tenantlake.ops.tables import ops_rows, refresh_ops

            reference = ops_rows(refresh_ops(rt))
        return wh.refresh(rt.registry, full=full, schemas=schemas, reference=reference).summary()


def checks(tenants: list[str], runtime=None) -> list[str]:
    with _session(runtime) as (_, wh):
        return wh.check(tenants)


def load_and_refresh(runtime=None, outcomes: list | None = None) -> dict:
    """All four steps in one task: the lake's new batches loaded, the star refreshed, the touched
    tenants checked. Raises naming every failed batch and check (the rest is loaded). `outcomes`
    receives each batch's BatchOutcome (OpenLineage's view of the load)."""
    from tenantlake.warehouse import lake_source

    with _session(runtime) as (rt, wh):
        wh.register_lake(*lake_source.current_files(rt.lake))
        batches, cursors = lake_source.new_batches(rt.lake, wh)
        report = wh.load(batches, cursors=cursors)
        if outcomes is not None:
            outcomes.extend(report.outcomes)
        refreshed = wh.refresh(rt.registry)
        problems = wh.check(report.tenants) if report.tenants else []
    summary = report.summary()
    failures = summary["failed"] + summary["problems"] + problems
    if failures:
        raise RuntimeError(f"{len(failures)} problem(s) after loading (the rest is loaded): "
                           + "; ".join(failures[:20]))
    return {**summary, "refresh": refreshed.summary()}


def warehouse_eraser(runtime=None):
    """For tenantlake.lifecycle.erase_consumer: (tenant, consumer_key, {entity: item ids}) -> rows
    removed per warehouse table, the marts refreshed, in one transaction."""
    def erase(tenant_id: str, consumer_key: str, items: dict[str, set[str]]) -> dict[str, int]:
        with _session(runtime) as (_, wh):
            return wh.erase_consumer(tenant_id, consumer_key, items)
    return erase


def warehouse_remover(runtime=None):
    """For tenantlake.lifecycle.offboard_tenant: tenant -> rows removed per warehouse table."""
    def remove(tenant_id: str) -> dict[str, int]:
        with _session(runtime) as (_, wh):
            return wh.remove_tenant(tenant_id)
    return remove


def reload_tenant(tenant_id: str, runtime=None) -> dict:
    """One tenant reloaded from the lake's current snapshot, the others untouched."""
    from tenantlake.warehouse import lake_source

    with _session(runtime) as (rt, wh):
        wh.register_lake(*lake_source.current_files(rt.lake))
        report = wh.reload_tenant(tenant_id, lake_source.all_batches(rt.lake, tenant_id), rt.registry)
        problems = wh.check([tenant_id])
    return {**report.summary(), "checks": problems}
