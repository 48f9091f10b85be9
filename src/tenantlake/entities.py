"""The entity names, importable at DAG parse time without pulling in pyarrow (contracts does)."""

ENTITY_NAMES = ("Consumer", "Counselor", "Application", "Income", "Expense", "Debt", "Plan", "Payment")


def raw_asset(entity: str):
    """The Asset tenant_exports updates when it publishes an entity's batch (warehouse_load's trigger)."""
    from airflow.sdk import Asset

    return Asset(name=f"raw_{entity.lower()}", uri=f"tenantlake://lake/raw/{entity}")
