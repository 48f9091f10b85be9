"""The ops figures as Arrow tables, for the warehouse's ops schema and for the lake twin.

`ops_tables` gives {"tenant_health": ..., "tenant_cost_monthly": ...} (schemas in
tenantlake.ops.health and tenantlake.ops.costs); warehouse_load refreshes ops.tenant_health and
ops.tenant_cost_monthly from them, replacing their rows (`ops_rows` gives them as the warehouse's
reference refill takes them).

The lake twin: the same two tables as Parquet files beside the lake, `<lake>/_ops/<name>.parquet`,
rewritten whole by `refresh_ops` (the tenant_health DAG, hourly). Files, not Iceberg tables: both
are derived, small (one row per tenant and table, or tenant and month) and recomputed from the
batch log every time, so an Iceberg table would only pile up a snapshot per refresh to expire, and
a tenant erased or offboarded from the batch log leaves the twin at the next refresh without a
delete of its own. A file is replaced in one put (a rename locally, one object in S3), so a reader
sees the old file or the new one. The embedded default reads them with DuckDB:
`SELECT * FROM read_parquet('<lake>/_ops/tenant_health.parquet')`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq

from tenantlake.lake.catalog import Lake
from tenantlake.ops.config import Objectives, Prices, load_objectives, load_prices
from tenantlake.ops.costs import BATCH_COLUMNS, TENANT_COST_MONTHLY_SCHEMA, batch_costs, tenant_cost_monthly
from tenantlake.ops.drift import DRIFT_SUMMARY_SCHEMA, drift_summary
from tenantlake.ops.health import TENANT_HEALTH_SCHEMA, collect, health_table
from tenantlake.registry import Registry
from tenantlake.storage import Store

TWIN = "_ops"
SCHEMAS = {"tenant_health": TENANT_HEALTH_SCHEMA, "tenant_cost_monthly": TENANT_COST_MONTHLY_SCHEMA,
           "drift_summary": DRIFT_SUMMARY_SCHEMA}


def ops_tables(lake: Lake, state: Store, registry: Registry, *, now: datetime | None = None,
               prices: Prices | None = None, objectives: Objectives | None = None) -> dict[str, pa.Table]:
    """The ops tables, computed now from the batch log, the watermarks, the run summaries and the
    registry."""
    now = now or datetime.now(UTC)
    prices = prices or load_prices()
    rows, batches = collect(lake, state, registry, now=now, prices=prices, objectives=objectives or load_objectives())
    monthly = (tenant_cost_monthly(batch_costs(batches.select(list(BATCH_COLUMNS)), prices), prices, now)
               if batches is not None else TENANT_COST_MONTHLY_SCHEMA.empty_table())
    return {"tenant_health": health_table(rows), "tenant_cost_monthly": monthly,
            "drift_summary": drift_summary(batches)}


def ops_rows(tables: dict[str, pa.Table]) -> dict[str, tuple[tuple[str, ...], list[tuple]]]:
    """The tables as the warehouse refills a reference table: {"ops.<name>": (columns, rows)},
    the shape of the engine's `_refill_reference` (rows as Python values, timestamps in UTC)."""
    return {f"ops.{name}": (tuple(table.column_names), [tuple(r.values()) for r in table.to_pylist()])
            for name, table in tables.items()}


def twin_key(name: str) -> str:
    return f"{TWIN}/{name}.parquet"


def write_twin(state: Store, tables: dict[str, pa.Table]) -> dict[str, str]:
    """Each table to `<lake>/_ops/<name>.parquet`, replaced whole; returns where each went."""
    out = {}
    for name, table in tables.items():
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="snappy")
        state.put(twin_key(name), sink.getvalue().to_pybytes())
        out[name] = f"{state.url.rstrip('/')}/{twin_key(name)}"
    return out


def read_twin(state: Store, name: str) -> pa.Table | None:
    """A twin table as last written (None before the first refresh)."""
    if name not in SCHEMAS:
        raise KeyError(f"no ops table {name!r}; ops tables: {', '.join(SCHEMAS)}")
    if not state.exists(twin_key(name)):
        return None
    with state.open(twin_key(name)) as f:
        return pq.read_table(pa.BufferReader(f.read()))


def refresh_ops(runtime=None, *, now: datetime | None = None) -> dict[str, pa.Table]:
    """Compute both tables for the runtime's lake and write the lake twin; returns the tables (the
    warehouse load refreshes its ops schema from them)."""
    if runtime is None:
        from tenantlake.connections import runtime as airflow_runtime

        runtime = airflow_runtime()
    tables = ops_tables(runtime.lake, runtime.state, runtime.registry, now=now)
    write_twin(runtime.state, tables)
    return tables
