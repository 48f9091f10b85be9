"""Operability per tenant: freshness against objectives, cost, status, health.

  config   the dated price table (config/prices.yaml) and the freshness objectives
           (config/freshness.yaml, with per-tenant overrides from the registry)
  costs    what each published batch cost (export, storage, its share of a warehouse load), and
           the cost per tenant per month
  health   one row per (tenant, table): watermark, lag, objective, state (ok, late, failing,
           never), last run, rows in / loaded / quarantined, drift, bytes, cost per month
  tables   both as Arrow tables (`ops_tables`), for the warehouse's ops schema and for the lake
           twin (Parquet files under the lake's `_ops/`, which the embedded default reads)
  status   `tenantlake status`: the health rows, worst first; exit 1 when any is late or failing
  page     the same rows and a freshness chart per tenant as one HTML page (the UI plugin)
  tasks    the tenant_health DAG's tasks (the only module here that imports Airflow)

Nothing here is imported by the data path; the figures come from what it leaves behind: the lake's
batch log (ops.batches), the watermarks and run summaries under `_state/`, and the registry.
"""
