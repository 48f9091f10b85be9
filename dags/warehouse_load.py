"""
### warehouse_load

Loads the lake into the warehouse once per tenant_exports run that published something, in
visible steps:

1. `register_lake`: the lake's current snapshot as `lake.*` (raw, restricted) and
   `lake_protected.*` (DuckDB views; on Redshift, external schemas over the Glue databases).
2. `load`: every batch published since the last run, per entity in ONE set-based load (one COPY
   over a manifest of every new file on Redshift), per-batch checks, one latest-wins MERGE per
   (tenant_id, key), history and `ops.load_audit` in the same transaction, exactly once. A batch
   failing its checks is left out and reported; every other tenant's batches load.
3. `refresh_core`: dimensions and facts for the keys that changed, and the ops tables (tenant
   health, cost per month).
4. `refresh_marts`: the marts for the tenants that changed.
5. `check`: post-load checks (current and history against the lake, no key under two tenants,
   marts against core) for the tenants this load touched; fails the run naming every problem.
   Not retried.

* **Warehouse**: `TENANTLAKE_WAREHOUSE=duckdb` (embedded default, `$TENANTLAKE_HOME/warehouse.duckdb`)
  or `redshift` (connection `redshift_default`, COPY role in `TENANTLAKE_COPY_ROLE`).
* **Params**: `reload_tenants` reloads those tenants whole from the lake, the others untouched.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, task

from tenantlake.entities import LAKE_PUBLISHED
from tenantlake.notify import TenantAlertNotifier
from tenantlake.tasks import WarehouseLoadOperator, check

with DAG(
    dag_id="warehouse_load",
    doc_md=__doc__,
    schedule=[LAKE_PUBLISHED],
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["tenantlake", "warehouse"],
    default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(minutes=2),
                  "retry_exponential_backoff": True, "on_failure_callback": TenantAlertNotifier()},
    params={"reload_tenants": Param([], type="array", description="Reload these tenants whole from the lake.")},
) as dag:

    @task
    def register_lake() -> None:
        """The lake's current snapshot as lake.* and lake_protected.*."""
        from tenantlake import loading

        loading.register_lake()

    @task
    def refresh_core() -> dict:
        """Dimensions and facts for what changed, and the ops tables."""
        from tenantlake import loading

        return loading.refresh(schemas=["ops", "core"], with_ops=True)

    @task
    def refresh_marts() -> dict:
        """The marts for the tenants that changed."""
        from tenantlake import loading

        return loading.refresh(schemas=["mart"])

    loaded = WarehouseLoadOperator(task_id="load")
    register_lake() >> loaded >> refresh_core() >> refresh_marts() >> check(loaded.output)
