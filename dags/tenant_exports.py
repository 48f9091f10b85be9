"""
### tenant_exports

Pulls every agency's DynamoDB tables into the lake: for each (tenant, table), the first run takes
a FULL export, later runs INCREMENTAL windows from the watermark (or the DynamoDB Streams records
landed for tenants whose changes come from streams); each batch is verified, decoded, audited and
published to the lake's Apache Iceberg tables (Write-Audit-Publish), then the watermark moves.

* **Shape**: `plan` reads the tenant registry at run time and cuts the work into shards (per entity,
  one tenant each for small fleets, groups for large ones); a mapped `sync` task per shard, named
  in the grid as `agency-004 / Debt`, publishes its tenants in one Iceberg commit per zone.
* **Failures**: a tenant's problem fails only its own table; the shard's other tenants publish.
  Problems that cannot heal (a bad manifest, a refused role, an invalid registry entry) fail at
  once, without retries; throttling and network errors retry with backoff. `report` fails the run
  with the list of tenant tables that failed, after everyone else has published.
* **Waiting** for exports is deferrable: no worker slot is held while DynamoDB writes; an export
  still running after 3 hours is reported stuck, naming the tenant, table and export ARN.
* **Params**: `tenants` / `tables` narrow a run; `resnapshot_tenants` forces a FULL export (which
  also repairs deletes missed in lost windows); `backfill_from` / `backfill_to` export exactly the
  windows of that past range not published yet (within DynamoDB's 35-day point-in-time window).
* **Outputs**: the asset `tenantlake_lake`, emitted by `publish_signal` only when the run published
  something: it schedules `warehouse_load` once per finished run.
* **Local mode** (`TENANTLAKE_MODE=local`, the default): the simulator has landed the exports;
  nothing calls AWS. See README "Production guide" for aws mode.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from tenantlake.entities import LAKE_PUBLISHED
from tenantlake.lineage import LAKE_ALIAS
from tenantlake.notify import TenantAlertNotifier
from tenantlake.tasks import POOL, SyncShardOperator, plan, publish_signal, report

with DAG(
    dag_id="tenant_exports",
    doc_md=__doc__,
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["tenantlake", "ingest"],
    default_args={
        "owner": "data-platform",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        "on_failure_callback": TenantAlertNotifier(),  # names the tenant and table (TENANTLAKE_ALERTS)
    },
    params={
        "tenants": Param([], type="array", description="Only these tenant ids (empty: every enabled tenant)."),
        "tables": Param([], type="array", description="Only these entities (empty: all of each tenant's)."),
        "resnapshot_tenants": Param([], type="array", description="Take a fresh FULL export for these tenants."),
        "backfill_from": Param("", type="string", description="Backfill from this date or time (UTC; within "
                               "DynamoDB's 35-day point-in-time window): exports only the missing windows."),
        "backfill_to": Param("", type="string", description="Backfill up to this date or time (UTC), exclusive."),
    },
) as dag:
    shards = plan()
    syncs = SyncShardOperator.partial(
        task_id="sync",
        pool=POOL,
        map_index_template="{{ task.shard['label'] }}",
    ).expand(shard=shards)
    # publish_signal: warehouse_load's schedule, and the lake tables the run wrote (tenants, rows)
    syncs >> [report(shards=shards), publish_signal.override(outlets=[LAKE_PUBLISHED, LAKE_ALIAS])()]
