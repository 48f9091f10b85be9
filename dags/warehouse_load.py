"""
### warehouse_load

Loads the lake into the warehouse whenever tenant_exports publishes: each new (tenant, entity,
export) batch is applied exactly once in one transaction (stage, row-count check, history, MERGE
latest-wins into current, ops.load_audit), then dimensions, facts and marts are rebuilt, and the
post-load checks reconcile row counts with the lake per tenant and make sure no row of one
tenant's batch sits under another tenant_id.

* **Schedule**: on data, not a clock: any entity Asset (`raw_<entity>`) updated by tenant_exports.
* **Warehouse**: `TENANTLAKE_WAREHOUSE=duckdb` (embedded default, `$TENANTLAKE_HOME/warehouse.duckdb`)
  or `redshift` (connection `redshift_default`, COPY role in `TENANTLAKE_COPY_ROLE`).
* **Failure isolation**: a tenant whose batch cannot be applied is reported; the others load.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, AssetAny, task

from tenantlake.entities import ENTITY_NAMES, raw_asset

with DAG(
    dag_id="warehouse_load",
    doc_md=__doc__,
    schedule=AssetAny(*(raw_asset(e) for e in ENTITY_NAMES)),
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["tenantlake", "warehouse"],
    default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(minutes=2),
                  "retry_exponential_backoff": True},
) as dag:

    @task
    def load_refresh_and_check() -> dict:
        """Apply new batches, rebuild core and marts, run the post-load checks."""
        from tenantlake.loading import load_and_refresh

        return load_and_refresh()

    load_refresh_and_check()
