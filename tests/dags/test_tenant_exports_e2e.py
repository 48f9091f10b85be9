"""tenant_exports end to end with real Airflow (dag.test) on the embedded default."""

import copy
import gzip
import hashlib
import json
from datetime import UTC, datetime

import pytest
import yaml
from boto3.dynamodb.types import TypeDeserializer

from tenantlake import watermarks
from tenantlake.lake.read import read
from tenantlake.registry import DEFAULT_PATH
from tenantlake.runtime import Runtime, forget
from tenantlake.storage import LocalStore
from tenantlake_dev.simulate import FleetSpec, simulate_fleet

pytestmark = pytest.mark.slow
TENANTS = ["agency-001", "agency-002", "agency-003"]
ENTITIES = ["Consumer", "Counselor", "Application", "Income", "Expense", "Debt", "Plan", "Payment"]


@pytest.fixture
def fleet_home(tmp_path, monkeypatch, registry):
    doc = yaml.safe_load(DEFAULT_PATH.read_text())
    doc["tenants"] = doc["tenants"][:3]
    (tmp_path / "tenants.yaml").write_text(yaml.safe_dump(doc))
    home = tmp_path / "home"
    simulate_fleet(registry.tenants[:3], FleetSpec(consumers=120, days=2, warmup_days=30, seed=21), home, workers=1)
    monkeypatch.setenv("TENANTLAKE_REGISTRY", str(tmp_path / "tenants.yaml"))
    monkeypatch.setenv("TENANTLAKE_HOME", str(home))
    monkeypatch.setenv("TENANTLAKE_MODE", "local")
    forget()  # the runtime is cached per process: this test's environment is a new one
    yield home
    forget()


def lake_of(home):
    return Runtime.from_env().lake


def read_committed(home, entity, tenant):
    """What the lake's raw table holds for a tenant's entity (its current snapshot)."""
    return read(lake_of(home), "raw", entity, tenant)


def run(dag, hour=0, conf=None):
    dag = copy.deepcopy(dag)  # the session's DagBag is shared: never change its DAGs in place
    for t in dag.tasks:
        t.retries = 0  # a failure should show now, not after the retry delay
    return dag.test(logical_date=datetime(2026, 11, 3, hour, tzinfo=UTC), run_conf=conf or {})


def lake_files(home):
    """Every table's data and metadata files, the catalog and the watermarks, byte for byte. Run
    records (_state/runs) are per run by design."""
    root = home / "lake"
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file() and not str(p.relative_to(root)).startswith("_state/runs")}


def test_two_days_for_three_agencies_land_exactly_the_ground_truth(airflow_db, dagbag, fleet_home):
    dag = dagbag.dags["tenant_exports"]
    first = run(dag)
    assert first.state == "success"
    # Airflow recorded the lake tables the run wrote, once each (raw and protected of every entity),
    # through the alias, naming every agency
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        recorded = session.execute(select(AssetModel.name, AssetEvent.extra).join(AssetEvent.asset)
                                   .where(AssetEvent.source_run_id == first.run_id)).all()
    lake_tables = sorted(name for name, _ in recorded if name != "tenantlake_lake")
    assert lake_tables == sorted(f"lake.{zone}.{e.lower()}" for e in ENTITIES for zone in ("raw", "protected"))
    assert all(extra["tenants"] == TENANTS for name, extra in recorded if name != "tenantlake_lake")
    store = LocalStore(fleet_home / "lake")
    exports = [json.loads(x) for x in (fleet_home / "truth/exports.jsonl").read_text().splitlines()]
    deser = TypeDeserializer()
    for tenant in TENANTS:
        for entity in ENTITIES:
            rows = read_committed(fleet_home, entity, tenant).to_pylist()
            # every item and change the simulator exported is a row, once
            expected = sum(e["item_count"] for e in exports if (e["tenant_id"], e["entity"]) == (tenant, entity))
            assert len(rows) == expected, (tenant, entity)
            assert {r["tenant_id"] for r in rows} == {tenant}
            # and replaying them latest-wins gives the tables' final state
            state = {}
            for r in sorted(rows, key=lambda r: (r["_event_ts"], r["_line"])):
                if r["_op"] == "remove":
                    state.pop(r["id"], None)
                else:
                    state[r["id"]] = r["ddb_version"]
            truth_lines = gzip.decompress((fleet_home / f"truth/{tenant}/{entity}.jsonl.gz").read_bytes()).splitlines()
            truth = {i["id"]["S"]: deser.deserialize(i["_version"]) for i in map(json.loads, truth_lines)}
            assert state == truth, (tenant, entity)
            mark = watermarks.read(store, tenant, entity)
            assert datetime.fromtimestamp(mark.to_us / 1e6, UTC) == datetime(2026, 11, 3, tzinfo=UTC)
    before = lake_files(fleet_home)
    # a rerun, and a forced re-snapshot of one agency, change nothing in the lake
    assert run(dag, hour=1).state == "success"
    assert run(dag, hour=2, conf={"resnapshot_tenants": ["agency-002"]}).state == "success"
    assert lake_files(fleet_home) == before


def test_one_agency_failing_leaves_the_others_published(airflow_db, dagbag, fleet_home):
    landing = fleet_home / "landing"
    victim = next((landing / "tenant=agency-002/table=Debt/AWSDynamoDB").glob("*/data/*.json.gz"))
    victim.write_bytes(gzip.compress(b'{"Item":{"id":{"S":"x"}}}\n'))  # no longer matches its MD5
    dag = dagbag.dags["tenant_exports"]
    result = run(dag)
    assert result.state == "failed"
    state = LocalStore(fleet_home / "lake")
    summary = json.loads(next((fleet_home / "lake/_state/runs").glob("*/summary.json")).read_text())
    assert summary["failed"] == ["agency-002/Debt"]
    assert watermarks.read(state, "agency-002", "Debt") is None  # not advanced
    assert read_committed(fleet_home, "Debt", "agency-002") is None  # nothing of it published
    for tenant in ("agency-001", "agency-003"):
        assert read_committed(fleet_home, "Debt", tenant).num_rows > 0
    assert read_committed(fleet_home, "Payment", "agency-002").num_rows > 0  # its other tables went through


def test_warehouse_load_after_exports_gives_the_truth(airflow_db, dagbag, fleet_home):
    from decimal import Decimal

    import duckdb

    assert run(dagbag.dags["tenant_exports"]).state == "success"
    assert run(dagbag.dags["warehouse_load"]).state == "success"
    truth = json.loads((fleet_home / "truth/aggregates.json").read_text())["tenants"]
    con = duckdb.connect(str(fleet_home / "warehouse.duckdb"), read_only=True)
    rows = con.execute("SELECT tenant_id, debt_balance, enrolled_debt FROM mart.agency_snapshot "
                       "WHERE tenant_id IN ('agency-001', 'agency-002', 'agency-003')").fetchall()
    con.close()
    assert {t: (b, e) for t, b, e in rows} == {
        t: (Decimal(truth[t]["debt_balance"]), Decimal(truth[t]["enrolled_debt"])) for t in TENANTS}
    assert run(dagbag.dags["warehouse_load"], hour=1).state == "success"  # nothing new: loads nothing, still green


@pytest.mark.parametrize(("old", "new", "said"), [
    ("aws_account_id: '212222222222'", "aws_account_id: '21222222222x'", "aws_account_id"),  # a typo in a field
    # an edit that breaks the entry's YAML (a line pasted with a tab): the rest of the file still reads
    ("  tenant_id: agency-002\n", "  tenant_id: agency-002\n\tnote: pasted from an email\n", "not valid YAML"),
])
def test_one_broken_registry_entry_fails_only_its_tenant(airflow_db, dagbag, fleet_home, tmp_path, monkeypatch,
                                                         old, new, said):
    from decimal import Decimal

    import duckdb

    broken = (tmp_path / "tenants.yaml").read_text().replace(old, new, 1)
    assert broken != (tmp_path / "tenants.yaml").read_text()
    (tmp_path / "broken.yaml").write_text(broken)
    monkeypatch.setenv("TENANTLAKE_REGISTRY", str(tmp_path / "broken.yaml"))
    assert run(dagbag.dags["tenant_exports"]).state == "failed"  # agency-002's task fails, alone
    summary = json.loads(next((fleet_home / "lake/_state/runs").glob("*/summary.json")).read_text())
    assert summary["failed"] == ["agency-002/-"] and said in summary["tenants"]["agency-002"]["failed"][0]
    assert read_committed(fleet_home, "Debt", "agency-002") is None
    assert run(dagbag.dags["warehouse_load"]).state == "success"
    truth = json.loads((fleet_home / "truth/aggregates.json").read_text())["tenants"]
    con = duckdb.connect(str(fleet_home / "warehouse.duckdb"), read_only=True)
    rows = dict((t, (b, e)) for t, b, e in con.execute(
        "SELECT tenant_id, debt_balance, enrolled_debt FROM mart.agency_snapshot").fetchall())
    con.close()
    for t in ("agency-001", "agency-003"):  # every other tenant is planned, runs and loads to the cent
        assert rows[t] == (Decimal(truth[t]["debt_balance"]), Decimal(truth[t]["enrolled_debt"])), t
