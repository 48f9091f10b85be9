"""Names the DAG files need at parse time, importable without pulling in pyarrow or the lake."""

from airflow.sdk import Asset

ENTITY_NAMES = ("Consumer", "Counselor", "Application", "Income", "Expense", "Debt", "Plan", "Payment")

# Emitted once per tenant_exports run that published rows; warehouse_load's schedule.
LAKE_PUBLISHED = Asset(name="tenantlake_lake", uri="tenantlake://lake/published")
