"""
### lake_maintenance

Keeps the lake's Apache Iceberg tables small, fast and forgetful, daily:

* **Promotion**: columns newly declared in the contracts are filled from the `_extra` of rows
  published before them (`tenantlake.lake.evolve`).
* **Compaction**: a (tenant, day) partition holding 8 files or more is rewritten as one file, in
  one commit per table (thousands of tenants with hourly windows otherwise leave millions of tiny
  files). Readers see the same rows; warehouse_load ignores compaction commits.
* **Snapshot expiry**: snapshots older than the time-travel retention
  (`TENANTLAKE_SNAPSHOT_RETENTION_HOURS`, default 72 hours) are expired.
* **Orphan files**: files no remaining snapshot references (expired data, files a killed publish
  moved in but never committed) are deleted once older than a grace period of six hours.

Erasure and offboarding expire and clean the tables they touch themselves, at once.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task

with DAG(
    dag_id="lake_maintenance",
    doc_md=__doc__,
    schedule="@daily",
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["tenantlake", "maintenance"],
    default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(minutes=10)},
) as dag:

    @task
    def compact_expire_and_clean() -> dict:
        """Every table of every zone: compact small files, expire old snapshots, remove orphans."""
        from tenantlake.tasks import maintain_lake

        return maintain_lake()

    compact_expire_and_clean()
