"""tenant_lifecycle through real Airflow (dag.test with params): an erasure as an agency would ask
for it, and params that cannot be acted on failing at once with what is wrong."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from tenantlake.lake.read import read

pytestmark = pytest.mark.slow


RUNS = iter(range(1, 100))


def run(dag, conf):
    """A run of its own each time (dag.test finds an existing run by its logical date)."""
    dag = copy.deepcopy(dag)
    return dag.test(logical_date=datetime(2026, 11, 3, next(RUNS), tzinfo=UTC), run_conf=conf)


def test_erase_through_the_dag_and_refusals(airflow_db, dagbag, registry, tmp_path):
    from tests.conftest import pipeline_world

    with pipeline_world(tmp_path, registry, ["agency-001", "agency-002"]) as runtime:
        consumer = read(runtime.lake, "raw", "Consumer", "agency-001")["id"][0].as_py()
        dag = dagbag.dags["tenant_lifecycle"]
        assert run(dag, {"action": "erase", "tenant_id": "agency-001", "consumer_id": consumer}).state == "success"
        assert consumer not in read(runtime.lake, "raw", "Consumer", "agency-001")["id"].to_pylist()
        assert run(dag, {"action": "erase", "tenant_id": "agency-001", "consumer_id": ""}).state == "failed"
        assert run(dag, {"action": "offboard", "tenant_id": "agency-002", "confirm": ""}).state == "failed"
        assert read(runtime.lake, "raw", "Consumer", "agency-002") is not None  # nothing was removed
        assert run(dag, {"action": "erase", "tenant_id": "agency-404", "consumer_id": "x"}).state == "failed"
