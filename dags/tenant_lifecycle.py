"""
### tenant_lifecycle

Triggered by hand, with params, for what an agency asks of us:

* **erase** one consumer (GDPR / CCPA): `{"action": "erase", "tenant_id": "agency-004",
  "consumer_id": "<the agency's own DynamoDB id>"}` removes the consumer and everything that is
  theirs from landing, raw, quarantine, protected, quality results and every warehouse layer
  (SCD2 history included), expires the lake snapshots and deletes the files that still held
  them, refreshes the marts, and records the request by pseudonym. Later exports that still
  carry the consumer do not bring them back. Idempotent: a run killed mid-way completes when
  triggered again with the same params.
* **offboard** a tenant: `{"action": "offboard", "tenant_id": "agency-004", "confirm": "agency-004"}`
  removes every trace of it (the report is kept as its tombstone); tenant_exports refuses it from
  then on. The confirmation must repeat the tenant id.

The result names the consumer by pseudonym only: no clear id reaches XCom or the logs.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from tenantlake.notify import TenantAlertNotifier
from tenantlake.tasks import lifecycle_action

with DAG(
    dag_id="tenant_lifecycle",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["tenantlake", "privacy"],
    default_args={"owner": "data-platform", "retries": 0, "on_failure_callback": TenantAlertNotifier()},
    params={
        "action": Param("erase", enum=["erase", "offboard"], description="erase one consumer, or offboard a tenant"),
        "tenant_id": Param("", type="string", description="The tenant (agency) id."),
        "consumer_id": Param("", type="string", description="erase: the consumer's id in the agency's table."),
        "confirm": Param("", type="string", description="offboard: the tenant id again, to confirm."),
    },
) as dag:
    lifecycle_action()
