"""
### tenant_health

Checks every agency's tables against their freshness objective, hourly, and keeps the ops tables
(`tenant_health`, `tenant_cost_monthly`) fresh in the lake's `_ops/` folder for the embedded
default (the warehouse's `ops` schema is refreshed by warehouse_load from the same figures).

* **Objectives**: per entity in `config/freshness.yaml`; an agency's registry entry overrides them
  per table (`freshness: {Debt: 26h}`). A table is late when its watermark (the end of the last
  export window published) is older than its objective, failing when its latest batch failed or the
  latest tenant_exports run lists it as failed.
* **Alerts**: `check_freshness` fails naming each late or failing agency and table and by how much,
  and its `on_failure_callback`, tenantlake's notifier, sends that list to the channels in
  `TENANTLAKE_ALERTS` (`log` by default; `sns:<topic arn>`, `email:<address>`, `slack:<conn id>`).
  The DAG has a deadline alert: a run still not done 30 minutes after it was queued alerts too
  (the check itself is stuck, so nobody would hear of late tables).
* **By hand**: `tenantlake status` prints the same rows (exit 1 when any is late or failing), and
  the Airflow UI's "Tenant health" page (plugin `tenant_health`) shows them with a freshness chart.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference

from tenantlake.notify import TenantAlertNotifier
from tenantlake.ops.tasks import check_freshness, refresh_ops_tables

with DAG(
    dag_id="tenant_health",
    doc_md=__doc__,
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["tenantlake", "ops"],
    default_args={"owner": "data-platform", "retries": 1, "retry_delay": timedelta(minutes=2)},
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=30),
        callback=AsyncCallback(TenantAlertNotifier),
    ),
) as dag:
    refresh_ops_tables() >> check_freshness.override(on_failure_callback=TenantAlertNotifier())()
