"""tenant_health with real Airflow (dag.test) on a fleet made late by the fixture: the check
fails naming the late tenant and table and by how much, the notifier's alert names them, and the
lake twin is rewritten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tenantlake.notify import LateTables, TenantAlertNotifier
from tenantlake.ops.tables import read_twin
from tests.tenantlake.test_ops_fleet import LATE_ENTITY, LATE_TENANT, build_fleet, use_fleet

pytestmark = pytest.mark.slow


class CapturingNotifier(TenantAlertNotifier):
    """The DAG's notifier, with its channels replaced by a list the test reads."""

    def __init__(self):
        super().__init__(channels="log")
        self.alerts = []

    def send(self, alert, context):
        self.alerts.append((alert, context.get("exception")))


def _run(dag, monkeypatch, hours_ago: int):
    for t in dag.tasks:
        monkeypatch.setattr(t, "retries", 0)
    # dag.test() round-trips the DAG through serialization in memory, which leaves its deadline
    # alerts encoded, and a run that succeeds then crashes looking them up by id (Airflow 3.3.2,
    # apache/airflow#73428; the scheduler stores ids and is not affected). The deadline's wiring
    # is checked above; the runs here go without it.
    monkeypatch.setattr(dag, "deadline", None)
    return dag.test(logical_date=datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
                    - timedelta(hours=hours_ago))


def test_the_dag_is_wired_to_our_notifier_and_a_deadline(dagbag):
    dag = dagbag.dags["tenant_health"]
    check = dag.get_task("check_freshness")
    assert [type(c) for c in check.on_failure_callback] == [TenantAlertNotifier]
    assert check.trigger_rule == "all_done" and check.upstream_task_ids == {"refresh_ops_tables"}
    [deadline] = dag.deadline
    assert deadline.callback.path == "tenantlake.notify.TenantAlertNotifier"
    assert deadline.interval == timedelta(minutes=30)


def test_a_late_tenant_fails_the_check_and_the_alert_names_it(airflow_db, dagbag, tmp_path, monkeypatch):
    fleet = build_fleet(tmp_path)
    use_fleet(monkeypatch, fleet)
    dag = dagbag.dags["tenant_health"]
    notifier = CapturingNotifier()
    monkeypatch.setattr(dag.get_task("check_freshness"), "on_failure_callback", [notifier])
    run = _run(dag, monkeypatch, hours_ago=30)
    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"refresh_ops_tables": "success", "check_freshness": "failed"}
    [(alert, exception)] = notifier.alerts
    assert isinstance(exception, LateTables)
    assert alert.kind == "late" and (LATE_TENANT, LATE_ENTITY) in alert.tables
    [line] = [x for x in alert.lines if x.startswith(f"{LATE_TENANT} / {LATE_ENTITY}: ")]
    # the fixture made it 29h old against 26h; the run took seconds, not a minute
    assert line == f"{LATE_TENANT} / {LATE_ENTITY}: late by 3h 0m (lag 29h 0m, objective 26h 0m)"
    assert {t for t, _ in alert.tables} == {LATE_TENANT, "agency-003"}  # the late one and the failing one
    assert "agency-001" not in alert.text and "agency-004" not in alert.text  # ok, and never: not alerts
    health = read_twin(fleet.state, "tenant_health")
    assert health.num_rows == 7 and health["computed_at"][0].as_py() > datetime.now(UTC) - timedelta(minutes=5)


def test_no_alert_when_every_table_is_fresh(airflow_db, dagbag, tmp_path, monkeypatch):
    fleet = build_fleet(tmp_path)
    import yaml

    doc = yaml.safe_load(fleet.registry_path.read_text())
    doc["tenants"] = [t for t in doc["tenants"] if t["tenant_id"] in ("agency-001", "agency-005")]
    fleet.registry_path.write_text(yaml.safe_dump(doc))
    use_fleet(monkeypatch, fleet)
    dag = dagbag.dags["tenant_health"]
    notifier = CapturingNotifier()
    monkeypatch.setattr(dag.get_task("check_freshness"), "on_failure_callback", [notifier])
    run = _run(dag, monkeypatch, hours_ago=31)
    assert run.state == "success"
    assert notifier.alerts == []


def test_a_mapped_shard_failure_alerts_with_its_tenant_and_table(airflow_db, tmp_path):
    """The callback the lead wires on tenant_exports' sync tasks, on a mapped operator shaped like
    SyncShardOperator (templated `shard`, labelled map indexes), failing for real in dag.test():
    the context Airflow hands the notifier carries the rendered shard and the label."""
    from airflow.sdk import DAG, BaseOperator
    from airflow.sdk.exceptions import AirflowFailException

    class Shard(BaseOperator):
        template_fields = ("shard",)

        def __init__(self, *, shard, **kwargs):
            super().__init__(**kwargs)
            self.shard = shard

        def execute(self, context):
            if self.shard["entity"] == "Debt":
                raise AirflowFailException(f"1 tenant table(s) failed (the others published): "
                                           f"{self.shard['tenants'][-1]} Debt: ExportError: manifest missing")
            return 1

    notifier = CapturingNotifier()
    with DAG("ops_mapped_alert_probe", schedule=None, catchup=False, tags=["tenantlake"]) as dag:
        Shard.partial(task_id="sync", map_index_template="{{ task.shard['label'] }}", retries=0,
                      on_failure_callback=[notifier]).expand(shard=[
                          {"entity": "Debt", "tenants": ["agency-001", "agency-002"], "label": "agency-001 .. agency-002 (2 tenants) / Debt"},
                          {"entity": "Plan", "tenants": ["agency-001"], "label": "agency-001 / Plan"}])
    # dag.test() runs only a DAG the metadata database knows: register this one with the
    # dags-folder bundle (what the DAG processor would do for a file there).
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(tmp_path))
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    run = dag.test()
    assert run.state == "failed"
    assert {ti.rendered_map_index: ti.state for ti in run.get_task_instances()} == {
        "agency-001 .. agency-002 (2 tenants) / Debt": "failed", "agency-001 / Plan": "success"}
    [(alert, _)] = notifier.alerts
    assert alert.tables == (("agency-002", "Debt"),)
    assert alert.subject == "tenantlake: ops_mapped_alert_probe.sync failed — agency-001 .. agency-002 (2 tenants) / Debt"
