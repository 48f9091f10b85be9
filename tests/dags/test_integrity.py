"""Every DAG loads and follows the team's policy; the DAG files stay light at parse time."""

import subprocess
import sys
import textwrap

import yaml
from airflow.sdk.definitions.mappedoperator import MappedOperator

from tests.dags.conftest import REPO

EXPECTED_DAGS = {"tenant_exports", "warehouse_load", "tenant_health", "lake_maintenance", "tenant_lifecycle"}


def test_expected_dags_load_without_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXPECTED_DAGS


# Tasks whose failures cannot heal by retrying: planning reads a file, reports and checks
# reconcile what is there (a post-load check retried would only go red again later).
NEVER_RETRIED = {("tenant_exports", "plan"), ("tenant_exports", "report"), ("tenant_exports", "publish_signal"),
                 ("warehouse_load", "check"), ("tenant_lifecycle", "lifecycle_action")}


def test_every_dag_has_owner_tags_retries_and_docs(dagbag):
    """Reads the DAGs as parsed (dagbag.dags is shared by the whole session: a test that changes
    a task's retries for speed works on a copy, so this policy check cannot depend on order)."""
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags and "tenantlake" in dag.tags, dag_id
        assert dag.doc_md and len(dag.doc_md) > 200, dag_id
        for t in dag.tasks:
            assert t.owner not in (None, "", "airflow"), (dag_id, t.task_id)
            if (dag_id, t.task_id) in NEVER_RETRIED:
                assert t.retries == 0, (dag_id, t.task_id)
            else:
                assert t.retries >= 1, (dag_id, t.task_id)


def test_tenant_exports_shape(dagbag):
    dag = dagbag.dags["tenant_exports"]
    sync = dag.get_task("sync")
    assert sync.pool == "tenant_exports" and "shard" in str(sync.map_index_template)
    assert dag.get_task("report").trigger_rule == "all_done"
    signal = dag.get_task("publish_signal")
    assert signal.trigger_rule == "all_done"
    # warehouse_load is scheduled by publish_signal's asset only (one event per run that published);
    # the lake tables the run wrote are named through an alias, by that one task: concurrent mapped
    # tasks emitting through an alias race on Airflow's asset tables (a shard failed so)
    assert [o.name for o in signal.outlets] == ["tenantlake_lake", "tenantlake_lake_tables"]
    assert not [t.task_id for t in dag.tasks if t.outlets and isinstance(t, MappedOperator)]
    assert "tenantlake_lake" in repr(dagbag.dags["warehouse_load"].timetable.asset_condition)


def _registry(path, n):
    """n tenants, each in an account of its own (a shared account is a duplicate: invalid)."""
    doc = yaml.safe_load((REPO / "dags/registry/tenants.yaml").read_text())
    base = doc["tenants"][0]
    doc["tenants"] = [{**base, "tenant_id": f"agency-{i:05d}", "aws_account_id": f"{300000000000 + i}",
                       "role_arn": f"arn:aws:iam::{300000000000 + i}:role/tenantlake-export"} for i in range(n)]
    path.write_text(yaml.safe_dump(doc))


def test_parsing_never_reads_the_registry_and_2000_tenants_keep_every_shard_under_the_limit(tmp_path):
    """The registry is read at run time, so its size (or its absence) cannot touch parse time: the
    DAG file parses in a fresh interpreter whose TENANTLAKE_REGISTRY names no file, and reading the
    registry is made to fail there. (Its parse time is printed, not asserted: a timed assertion
    fails on a busy machine; benchmarks/ measure.) Then 2,000 tenants plan into shards that stay
    within Airflow's max_map_length."""
    registry = tmp_path / "tenants.yaml"
    _registry(registry, 2000)
    code = textwrap.dedent(f"""
        import os, time, runpy
        os.environ["TENANTLAKE_REGISTRY"] = {str(tmp_path / "absent.yaml")!r}
        import airflow.sdk, pendulum  # what any DAG file pays for anyway
        from tenantlake import registry
        def refused(*a, **k):
            raise AssertionError("the registry was read while parsing")
        real, registry.load_registry = registry.load_registry, refused
        t = time.perf_counter()
        runpy.run_path({str(REPO / "dags/tenant_exports.py")!r})
        print(time.perf_counter() - t)
        from tenantlake.tasks import plan_shards
        shards = plan_shards(real({str(registry)!r}), {{}})
        print(len(shards), max(len(s["tenants"]) for s in shards))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    seconds, tasks, biggest_shard = float(out[-3]), int(out[-2]), int(out[-1])
    print(f"tenant_exports parse time: {seconds:.3f}s; 2,000 tenants: {tasks} sync tasks, largest shard {biggest_shard}")
    assert tasks <= 8 * 16 < 1024 and biggest_shard == 125  # 2,000 tenants in 16 shards per entity


def test_warehouse_load_tells_its_story_in_steps(dagbag):
    dag = dagbag.dags["warehouse_load"]
    order = ["register_lake", "load", "refresh_core", "refresh_marts", "check"]
    for before, after in zip(order, order[1:], strict=False):
        assert after in dag.get_task(before).downstream_task_ids, (before, after)
