"""The tenant_health DAG's tasks (the DAG file only wires them)."""

from __future__ import annotations

from airflow.sdk import task


def _runtime():
    from tenantlake.connections import runtime

    return runtime()


def why(row) -> str:
    """A late or failing row in a phrase: by how much, or the reason."""
    from tenantlake.ops.status import duration

    if row.state == "late":
        return (f"late by {duration(row.late_by_seconds)} (lag {duration(row.lag_seconds)}, "
                f"objective {duration(row.objective_seconds)})")
    return f"failing: {row.error}"


@task(retries=1)
def refresh_ops_tables() -> dict:
    """Recompute tenant_health and tenant_cost_monthly and rewrite the lake twin (`<lake>/_ops/`)."""
    from tenantlake.ops.tables import refresh_ops

    return {name: table.num_rows for name, table in refresh_ops(_runtime()).items()}


@task(trigger_rule="all_done", retries=1)
def check_freshness() -> dict:
    """Every (tenant, table) against its freshness objective; fails naming each late or failing
    one and by how much (LateTables: no retry, the alert names them)."""
    from tenantlake.notify import LateTables
    from tenantlake.ops.health import collect
    from tenantlake.ops.status import PROBLEMS

    runtime = _runtime()
    rows, _ = collect(runtime.lake, runtime.state, runtime.registry)
    bad = [(r.tenant_id, r.entity, why(r)) for r in rows if r.state in PROBLEMS]
    if bad:
        raise LateTables(bad)
    return {state: sum(r.state == state for r in rows) for state in ("ok", "never")}
