"""
### tenant_exports

Pulls every agency's DynamoDB tables into the lake: for each (tenant, table), the first run takes
a FULL export, later runs INCREMENTAL windows from the watermark (or landed stream records); each
batch is verified, decoded, audited and published (Write-Audit-Publish), then the watermark moves.

* **Shape**: per entity and shard, `plan` reads the tenant registry at run time and a mapped
  `sync` task pulls each of its tenants. A tenant's failure fails only its own tasks; `report` then
  fails the run with the list, after everyone else has published.
* **Waiting** for exports is deferrable: no worker slot is held while DynamoDB writes.
* **Params**: `tenants` / `tables` narrow a run; `resnapshot_tenants` forces a FULL export.
* **Outputs**: an Asset per entity (`raw_<entity>`), which schedules `warehouse_load`.
* **Local mode** (`TENANTLAKE_MODE=local`, the default): the simulator has landed the exports;
  nothing calls AWS. See README "Production guide" for aws mode.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, TaskGroup

from tenantlake.entities import ENTITY_NAMES, raw_asset
from tenantlake.tasks import POOL, SHARDS, SyncTableOperator, plan, report

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
    },
    params={
        "tenants": Param([], type="array", description="Only these tenant ids (empty: every enabled tenant)."),
        "tables": Param([], type="array", description="Only these entities (empty: all of each tenant's)."),
        "resnapshot_tenants": Param([], type="array", description="Take a fresh FULL export for these tenants."),
    },
) as dag:
    shards, syncs = {}, []
    for entity in ENTITY_NAMES:
        with TaskGroup(group_id=entity.lower()):
            for shard in range(SHARDS):
                tenants = plan.override(task_id=f"plan_{shard}")(entity=entity, shard=shard)
                shards[f"{entity}-{shard}"] = tenants
                syncs.append(
                    SyncTableOperator.partial(
                        task_id=f"sync_{shard}",
                        entity=entity,
                        pool=POOL,
                        outlets=[raw_asset(entity)],
                    ).expand(tenant_id=tenants)
                )
    syncs >> report(shards=shards)
