"""Every DAG loads and follows the team's policy; the DAG files stay light at parse time."""

import subprocess
import sys
import textwrap

import yaml

from tests.dags.conftest import REPO

EXPECTED_DAGS = {"tenant_exports", "warehouse_load"}


def test_expected_dags_load_without_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXPECTED_DAGS


def test_every_dag_has_owner_tags_retries_and_docs(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags and "tenantlake" in dag.tags, dag_id
        assert dag.doc_md and len(dag.doc_md) > 200, dag_id
        for t in dag.tasks:
            assert t.owner not in (None, "", "airflow"), (dag_id, t.task_id)
            assert t.retries >= 1, (dag_id, t.task_id)


def test_tenant_exports_shape_stays_inside_the_map_limit(dagbag):
    from tenantlake.tasks import SHARDS

    dag = dagbag.dags["tenant_exports"]
    syncs = [t for t in dag.tasks if t.task_id.endswith(tuple(f"sync_{i}" for i in range(SHARDS)))]
    assert len(syncs) == 8 * SHARDS
    assert {t.pool for t in syncs} == {"tenant_exports"}
    assert all(t.outlets for t in syncs)
    assert dag.get_task("report").trigger_rule == "all_done"


def _registry(path, n):
    doc = yaml.safe_load((REPO / "dags/registry/tenants.yaml").read_text())
    base = doc["tenants"][0]
    doc["tenants"] = [{**base, "tenant_id": f"agency-{i:05d}"} for i in range(n)]
    path.write_text(yaml.safe_dump(doc))


def test_parse_time_with_2000_tenants_and_no_shard_over_the_limit(tmp_path):
    """Measured in a fresh interpreter: import Airflow first (every parse has it), then time the
    DAG file alone. The registry is read at run time, so its size must not matter."""
    registry = tmp_path / "tenants.yaml"
    _registry(registry, 2000)
    code = textwrap.dedent(f"""
        import os, time, runpy, collections
        os.environ["TENANTLAKE_REGISTRY"] = {str(registry)!r}
        import airflow.sdk, pendulum  # what any DAG file pays for anyway
        t = time.perf_counter()
        runpy.run_path({str(REPO / "dags/tenant_exports.py")!r})
        print(time.perf_counter() - t)
        from tenantlake.tasks import plan_shard, SHARDS
        print(max(len(plan_shard(e, s, {{}})) for e in ["Debt"] for s in range(SHARDS)))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    seconds, biggest_shard = float(out[-2]), int(out[-1])
    print(f"tenant_exports parse time with 2,000 tenants: {seconds:.3f}s; largest shard {biggest_shard}")
    assert seconds < 1.0
    assert 400 < biggest_shard < 1024
