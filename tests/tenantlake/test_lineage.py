"""Lineage: Asset names, the OpenLineage datasets and facets of a shard and a load, and events sent
by the OpenLineage provider for a real run when a transport is configured, none when not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from openlineage.client.serde import Serde

from tenantlake.entities import LAKE_PUBLISHED
from tenantlake.lake.catalog import arrow_schema
from tenantlake.lineage import (
    LAKE_ALIAS,
    lake_asset,
    lake_events,
    landing_asset,
    load_lineage,
    location,
    run_lake_events,
    sync_lineage,
    warehouse_asset,
)
from tenantlake.warehouse.interface import BatchOutcome

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
SHARD = {"entity": "Debt", "tenants": ["agency-001", "agency-002", "agency-003"],
         "label": "agency-001 .. agency-003 (3 tenants) / Debt"}
SUMMARY = {"label": SHARD["label"], "entity": "Debt", "tables": {
    "agency-001": {"rows": 118, "quarantined": 2, "error": None},
    "agency-002": {"rows": 40, "quarantined": 0, "error": None},
    "agency-003": {"rows": 0, "quarantined": 0, "error": "ExportError: MD5 mismatch"}}}


def _json(facet) -> dict:
    return json.loads(Serde.to_json(facet))


def test_assets_are_named_alike_at_every_layer():
    assert [a.uri for a in (landing_asset("agency-004", "Debt"), lake_asset("raw", "Debt"),
                            lake_asset("protected", "Debt"), warehouse_asset("core", "current_debt"), LAKE_PUBLISHED)] == [
        "tenantlake://landing/agency-004/Debt", "tenantlake://lake/raw/debt", "tenantlake://lake/protected/debt",
        "tenantlake://warehouse/core/current_debt", "tenantlake://lake/published"]
    assert lake_asset("raw", "Debt").name == "lake.raw.debt"  # the Iceberg identifier, tenantlake_raw.debt


def test_a_shards_lineage_has_each_tenant_in_and_the_lake_tables_out_with_schemas():
    ol = sync_lineage(SHARD, SUMMARY, landing_url="s3://tenantlake-landing/", lake_url="s3://tenantlake-lake/prod")
    assert [(d.namespace, d.name, _json(d.facets["tenant"])["tenants"]) for d in ol.inputs] == [
        ("s3://tenantlake-landing", f"tenant={t}/table=Debt", [t]) for t in SHARD["tenants"]]
    assert [(d.namespace, d.name) for d in ol.outputs] == [
        ("s3://tenantlake-lake", "prod/tenantlake_raw/debt"), ("s3://tenantlake-lake", "prod/tenantlake_protected/debt"),
        ("s3://tenantlake-lake", "prod/tenantlake_quarantine/debt")]
    raw, protected, quarantine = ol.outputs
    assert [f.name for f in raw.facets["schema"].fields] == arrow_schema("raw", "Debt").names
    assert [f.name for f in protected.facets["schema"].fields] == arrow_schema("protected", "Debt").names
    assert "email" not in [f.name for f in protected.facets["schema"].fields]  # the protected zone's own columns
    # the failed tenant wrote nothing: it is in the run facet's failed list, not in the tables' rows
    assert _json(raw.facets["tenant"])["rows"] == {"agency-001": 118, "agency-002": 40}
    assert raw.outputFacets["outputStatistics"].rowCount == 158
    assert _json(quarantine.facets["tenant"])["rows"] == {"agency-001": 2}
    run = _json(ol.run_facets["tenantlake"])
    assert (run["entity"], run["failed"], run["rows"], run["quarantined"]) == ("Debt", ["agency-003"], 158, 2)


def test_no_quarantine_output_when_nothing_was_quarantined_and_local_paths_are_files(tmp_path):
    summary = {"tables": {"agency-001": {"rows": 5, "quarantined": 0, "error": None}}}
    ol = sync_lineage({"entity": "Plan", "tenants": ["agency-001"]}, summary, landing_url=str(tmp_path / "landing"),
                      lake_url=str(tmp_path / "lake"))
    assert [(d.namespace, d.name) for d in ol.outputs] == [
        ("file", f"{tmp_path}/lake/tenantlake_raw/plan"), ("file", f"{tmp_path}/lake/tenantlake_protected/plan")]
    assert ol.inputs[0].name == f"{tmp_path}/landing/tenant=agency-001/table=Plan"
    assert location("s3://bucket") == ("s3://bucket", "")


def test_a_registry_problem_shard_has_no_datasets():
    ol = sync_lineage({"entity": "-", "tenants": ["agency-003"], "label": "agency-003 / registry"}, None,
                      landing_url="/tmp/landing", lake_url="/tmp/lake")
    assert (ol.inputs, ol.outputs) == ([], [])
    assert _json(ol.run_facets["tenantlake"])["failed"] == ["agency-003"]


def test_a_loads_lineage_has_the_protected_tables_in_and_the_core_tables_out():
    outcomes = [BatchOutcome("agency-001", "Debt", "e1", "loaded", 118), BatchOutcome("agency-002", "Debt", "e2", "loaded", 40),
                BatchOutcome("agency-002", "Plan", "e3", "skipped", 0), BatchOutcome("agency-003", "Plan", "e4", "failed", 0, "x"),
                {"tenant_id": "agency-001", "entity": "Plan", "status": "loaded", "rows": 30}]
    ol = load_lineage(outcomes, lake_url="s3://tenantlake-lake/prod", warehouse="redshift",
                      warehouse_where="wh.abc.us-east-1.redshift.amazonaws.com:5439", database="analytics")
    assert [(d.name, _json(d.facets["tenant"])["rows"]) for d in ol.inputs] == [
        ("prod/tenantlake_protected/debt", {"agency-001": 118, "agency-002": 40}),
        ("prod/tenantlake_protected/plan", {"agency-001": 30})]
    assert [(d.namespace, d.name, d.outputFacets["outputStatistics"].rowCount) for d in ol.outputs] == [
        ("redshift://wh.abc.us-east-1.redshift.amazonaws.com:5439", "analytics.core.current_debt", 158),
        ("redshift://wh.abc.us-east-1.redshift.amazonaws.com:5439", "analytics.core.history_debt", 158),
        ("redshift://wh.abc.us-east-1.redshift.amazonaws.com:5439", "analytics.core.current_plan", 30),
        ("redshift://wh.abc.us-east-1.redshift.amazonaws.com:5439", "analytics.core.history_plan", 30)]
    assert _json(ol.run_facets["tenantlake"])["tenants"] == ["agency-001", "agency-002"]


def test_lake_events_go_through_the_alias_naming_tenants_and_rows():
    from airflow.sdk.execution_time.context import OutletEventAccessors

    events = OutletEventAccessors()
    assets = lake_events(events, "Debt", SUMMARY)
    assert [a.uri for a in assets] == ["tenantlake://lake/raw/debt", "tenantlake://lake/protected/debt",
                                       "tenantlake://lake/quarantine/debt"]
    recorded = events[LAKE_ALIAS].asset_alias_events
    assert [(e.dest_asset_key.uri, e.extra) for e in recorded] == [
        (a.uri, {"tenants": ["agency-001", "agency-002"], "rows": 158}) for a in assets]
    assert lake_events(OutletEventAccessors(), "Debt", {"tables": {"agency-003": {"rows": 0}}}) == []


# ---- events from a real run ---------------------------------------------------------------------

PROBE_DAG = '''
"""Probes the lineage methods tenantlake gives SyncShardOperator and the warehouse load."""
import pendulum
from airflow.sdk import DAG, BaseOperator

from tenantlake.lineage import SyncShardLineage, WarehouseLoadLineage


class ProbeSync(SyncShardLineage, BaseOperator):
    template_fields = ("shard",)

    def __init__(self, *, shard, **kwargs):
        super().__init__(**kwargs)
        self.shard = shard

    def execute(self, context):
        self.lineage_summary = {summary!r}  # what SyncShardOperator._ingest leaves
        return 1


class ProbeLoad(WarehouseLoadLineage, BaseOperator):
    def execute(self, context):
        self.lineage_outcomes = [("agency-001", "Debt", "loaded", 118), ("agency-002", "Debt", "loaded", 40)]
        return 1


with DAG("ol_probe", schedule=None, start_date=pendulum.datetime(2026, 11, 1, tz="UTC"), catchup=False,
         tags=["tenantlake"], default_args={{"owner": "data-platform"}}):
    ProbeSync(task_id="sync", shard={shard!r}) >> ProbeLoad(task_id="load")
'''


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("ol-airflow")
    (home / "dags").mkdir()
    (home / "dags" / "ol_probe.py").write_text(textwrap.dedent(PROBE_DAG).format(summary=SUMMARY, shard=SHARD))
    env = _env(home)
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=600)
    return home


def _env(home: Path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "OPENLINEAGE"))}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
               AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__PLUGINS_FOLDER=str(home / "plugins"),
               TENANTLAKE_HOME=str(home / "tenantlake"), TENANTLAKE_MODE="local", **extra)
    return env


def _dags_test(home: Path, day: str, **extra) -> subprocess.CompletedProcess:
    return subprocess.run([AIRFLOW, "dags", "test", "ol_probe", day], env=_env(home, **extra), capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_openlineage_events_are_sent_for_a_run_when_a_transport_is_configured(airflow_home):
    events_file = airflow_home / "ol-events.jsonl"
    transport = json.dumps({"type": "file", "log_file_path": str(events_file), "append": True})
    done = _dags_test(airflow_home, "2026-11-02", AIRFLOW__OPENLINEAGE__TRANSPORT=transport)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    complete = {e["job"]["name"]: e for e in events if e["eventType"] == "COMPLETE"}
    sync, load = complete["ol_probe.sync"], complete["ol_probe.load"]
    lake = airflow_home / "tenantlake" / "lake"
    assert [i["name"] for i in sync["inputs"]] == [
        f"{airflow_home}/tenantlake/landing/tenant={t}/table=Debt" for t in SHARD["tenants"]]
    assert [(o["namespace"], o["name"]) for o in sync["outputs"]] == [
        ("file", f"{lake}/tenantlake_{zone}/debt") for zone in ("raw", "protected", "quarantine")]
    raw = sync["outputs"][0]
    assert raw["facets"]["tenant"]["rows"] == {"agency-001": 118, "agency-002": 40}
    assert raw["outputFacets"]["outputStatistics"]["rowCount"] == 158
    assert {f["name"] for f in raw["facets"]["schema"]["fields"]} >= {"tenant_id", "id", "_event_ts"}
    assert sync["run"]["facets"]["tenantlake"]["failed"] == ["agency-003"]
    assert [o["name"] for o in load["outputs"]] == ["core.current_debt", "core.history_debt"]
    assert load["outputs"][0]["namespace"] == f"duckdb://{airflow_home}/tenantlake/warehouse.duckdb"
    assert {e["eventType"] for e in events} >= {"START", "COMPLETE"}


@pytest.mark.slow
def test_no_openlineage_events_when_it_is_switched_off(airflow_home):
    """A transport configured but [openlineage] disabled: the run sends nothing."""
    events_file = airflow_home / "ol-events-off.jsonl"
    transport = json.dumps({"type": "file", "log_file_path": str(events_file), "append": True})
    done = _dags_test(airflow_home, "2026-11-03", AIRFLOW__OPENLINEAGE__TRANSPORT=transport,
                      AIRFLOW__OPENLINEAGE__DISABLED="True")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "[DAG TEST] end task task_id=load" in done.stdout + done.stderr  # the run did happen
    assert not events_file.exists()


def test_openlineage_is_off_by_default(airflow_home):
    """No transport configured (the shipped configuration): the provider disables itself and its
    plugin registers no listener, so no run sends an event."""
    code = ("from airflow.providers.openlineage import conf; from airflow import plugins_manager; "
            "plugins, _ = plugins_manager._get_plugins(); "
            "[ol] = [p for p in plugins if p.name == 'OpenLineageProviderPlugin']; "
            "print(conf.is_disabled(), len(ol.listeners))")
    done = subprocess.run([sys.executable, "-c", code], env=_env(airflow_home), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:] == ["True", "0"]
    transport = json.dumps({"type": "file", "log_file_path": str(airflow_home / "unused.jsonl")})
    done = subprocess.run([sys.executable, "-c", code], env=_env(airflow_home, AIRFLOW__OPENLINEAGE__TRANSPORT=transport),
                          capture_output=True, text=True, timeout=300)
    assert done.stdout.split()[-2:] == ["False", "1"]  # the same check sees it on when configured


def test_a_runs_lake_events_name_each_table_once_with_every_shards_tenants():
    from airflow.sdk.execution_time.context import OutletEventAccessors

    shards = [{"entity": "Debt", "tables": {"agency-001": {"rows": 3}, "agency-002": {"rows": 0}}},
              {"entity": "Debt", "tables": {"agency-004": {"rows": 2, "quarantined": 1}}},
              {"entity": "Plan", "tables": {"agency-001": {"rows": 0}}}]
    events = OutletEventAccessors()
    assets = run_lake_events(events, shards)
    assert [a.name for a in assets] == ["lake.raw.debt", "lake.protected.debt", "lake.quarantine.debt"]
    assert [e.extra for e in events[LAKE_ALIAS].asset_alias_events] == [
        {"tenants": ["agency-001", "agency-004"], "rows": 5}] * 3
