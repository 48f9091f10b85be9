"""What warehouse_load's tasks do: apply new lake batches to the warehouse, rebuild, check.

The warehouse is chosen at run time: TENANTLAKE_WAREHOUSE = duckdb (the embedded default, a file
at $TENANTLAKE_HOME/warehouse.duckdb) or redshift (the Airflow connection in
TENANTLAKE_REDSHIFT_CONN, default redshift_default, and TENANTLAKE_COPY_ROLE for COPY).
"""

from __future__ import annotations

import os

from tenantlake.contracts import ENTITIES
from tenantlake.registry import load_registry
from tenantlake.settings import Settings
from tenantlake.storage import open_store


def open_warehouse(settings: Settings, registry):
    kind = os.environ.get("TENANTLAKE_WAREHOUSE", "duckdb")
    if kind == "duckdb":
        from tenantlake.warehouse import DuckDBWarehouse

        return DuckDBWarehouse(f"{settings.home}/warehouse.duckdb", pseudonym_keys(settings, registry))
    if kind == "redshift":
        from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

        from tenantlake.warehouse import RedshiftWarehouse

        hook = RedshiftSQLHook(redshift_conn_id=os.environ.get("TENANTLAKE_REDSHIFT_CONN", "redshift_default"))
        return RedshiftWarehouse(hook.get_conn, settings.lake, os.environ["TENANTLAKE_COPY_ROLE"],
                                 open_store(settings.lake))
    raise ValueError(f"TENANTLAKE_WAREHOUSE={kind!r}: expected duckdb or redshift")


def pseudonym_keys(settings: Settings, registry):
    """Where the DuckDB warehouse gets each tenant's pseudonym key: the secret store in aws mode
    (the same key the Redshift Lambda reads), a local key file otherwise."""
    from tenantlake import pseudonyms

    if settings.mode == "aws":
        from tenantlake.aws import central_session

        session = central_session(settings.aws_conn_id)
        return lambda tenant_id: pseudonyms.secret_key(registry.tenant(tenant_id).pseudonym_key_ref, session)
    return lambda tenant_id: pseudonyms.local_key(settings.home, tenant_id)


def load_and_refresh() -> dict:
    """Apply every committed batch not yet loaded, per tenant in isolation; rebuild; check."""
    from tenantlake.warehouse import lake_batches, load_lake

    registry = load_registry()
    settings = Settings.from_env(registry.landing_bucket)
    lake = open_store(settings.lake)
    warehouse = open_warehouse(settings, registry)
    batches = lake_batches(lake, registry)
    try:
        result = load_lake(warehouse, lake, registry, batches=batches)
        result["checks"] = post_load_checks(warehouse, batches)
    finally:
        if hasattr(warehouse, "close"):
            warehouse.close()
    problems = [f"{t}: {why}" for t, why in result["failed"].items()] + result["checks"]
    if problems:
        raise RuntimeError(f"{len(problems)} problem(s) after loading (the rest is loaded): "
                           + "; ".join(problems[:20]))
    return {k: v for k, v in result.items() if k != "checks"}


def post_load_checks(warehouse, batches: dict) -> list[str]:
    """Row counts reconcile with the lake per tenant and entity; no row under another tenant.
    `batches` is the lake's commit markers as load_lake applied them (warehouse.lake_batches)."""
    problems = []
    for entity in ENTITIES:
        table = f"core.history_{entity.lower()}"
        counts = {r["tenant_id"]: r["n"] for r in warehouse.query(
            f"SELECT tenant_id, COUNT(*) AS n FROM {table} GROUP BY tenant_id")}
        for (tenant_id, e), cs in batches.items():
            published = sum(c.rows for c in cs)
            if e == entity and counts.get(tenant_id, 0) != published:
                problems.append(f"{tenant_id} {entity}: {counts.get(tenant_id, 0)} rows in {table}, "
                                f"{published} published in the lake")
        crossed = warehouse.query(
            f"SELECT COUNT(*) AS n FROM {table} AS h JOIN ops.load_audit AS a ON a.export_id = h._export_id "
            f"AND a.entity = {warehouse.placeholder} WHERE a.tenant_id <> h.tenant_id", [entity])[0]["n"]
        if crossed:
            problems.append(f"{entity}: {crossed} rows sit under another tenant than their batch's")
    return problems
