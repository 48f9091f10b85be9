"""Golden tests: the simulator's history through the lake's protected files and the warehouse (real
DuckDB); every mart figure equals the ground truth the simulator computed independently, to the
cent, and the incremental refresh gives what a full rebuild gives."""

import gzip
import json
import random
from decimal import Decimal

import pytest

from tenantlake.pseudonyms import local_key, pseudonym
from tests.tenantlake.warehouse.conftest import TENANTS

pytestmark = pytest.mark.slow
MARTS = ["agency_snapshot", "creditor_exposure", "creditor_exposure_by_agency", "enrolment_funnel",
         "consumers_by_status", "plan_outcomes_by_cohort", "agency_kpis_monthly"]


def by_tenant(rows, key="tenant_id"):
    return {r[key]: r for r in rows}


def snapshot(w, tables) -> dict:
    return {t: sorted(map(str, w.query(f"SELECT * FROM {t}"))) for t in tables}


def test_agency_snapshot_equals_truth_to_the_cent(world, wh):
    _, _, truth = world
    snap = by_tenant(wh.query("SELECT * FROM mart.agency_snapshot"))
    for tid in TENANTS:
        assert snap[tid]["debt_balance"] == Decimal(truth["tenants"][tid]["debt_balance"]), tid
        assert snap[tid]["enrolled_debt"] == Decimal(truth["tenants"][tid]["enrolled_debt"]), tid
        assert snap[tid]["live_debts"] == truth["tenants"][tid]["live_items"]["Debt"], tid
    assert sum(snap[t]["debt_balance"] for t in TENANTS) == Decimal(truth["fleet"]["debt_balance"])


def test_creditor_exposure_across_agencies_equals_truth(world, wh):
    _, _, truth = world
    ours = {r["creditor_name"]: r for r in wh.query("SELECT * FROM mart.creditor_exposure")}
    expected = {name.upper(): v for name, v in truth["fleet"]["creditor_exposure"].items()}  # display case only
    assert set(ours) == set(expected)
    for name, v in expected.items():
        assert ours[name]["total_balance"] == Decimal(v["balance"]), name
        assert ours[name]["agencies"] == v["agencies"], name
    per_agency = wh.query("SELECT * FROM mart.creditor_exposure_by_agency WHERE tenant_id = 'agency-002'")
    assert {r["creditor_name"]: r["total_balance"] for r in per_agency} == {
        k.upper(): Decimal(v) for k, v in truth["tenants"]["agency-002"]["creditor_exposure"].items()}


def test_every_spelling_of_a_creditor_is_one_creditor(world, wh):
    home, _, _ = world
    spelling_to_truth = json.loads((home / "truth/creditors.json").read_text())
    dim = {r["spelling"]: r["creditor_name"] for r in wh.query("SELECT spelling, creditor_name FROM core.dim_creditor")}
    assert dim
    for spelling, creditor in dim.items():
        assert creditor == spelling_to_truth[spelling].upper(), spelling


def test_funnel_cohorts_and_monthly_payments_equal_truth(world, wh):
    _, _, truth = world
    funnel = by_tenant(wh.query("SELECT * FROM mart.enrolment_funnel"))
    long = wh.query("SELECT tenant_id, status, consumers FROM mart.consumers_by_status")
    cohorts = wh.query("SELECT tenant_id, SUM(proposed) p, SUM(active) a, SUM(completed) c, SUM(cancelled) x "
                       "FROM mart.plan_outcomes_by_cohort GROUP BY tenant_id")
    kpis = wh.query("SELECT tenant_id, month, payments_collected FROM mart.agency_kpis_monthly WHERE payments_settled > 0")
    for tid in TENANTS:
        t = truth["tenants"][tid]
        statuses = {s.lower(): n for s, n in t["consumers_by_status"].items()}
        assert {k: funnel[tid][k if k != "lead" else "leads"] for k in statuses} == statuses
        assert funnel[tid]["other_status"] == 0
        assert {r["status"]: r["consumers"] for r in long if r["tenant_id"] == tid} == t["consumers_by_status"]
        plans = next(r for r in cohorts if r["tenant_id"] == tid)
        assert {"PROPOSED": plans["p"], "ACTIVE": plans["a"], "COMPLETED": plans["c"], "CANCELLED": plans["x"]} == {
            s: t["plans_by_status"].get(s, 0) for s in ("PROPOSED", "ACTIVE", "COMPLETED", "CANCELLED")}
        months = {str(r["month"])[:7]: r["payments_collected"] for r in kpis if r["tenant_id"] == tid}
        assert months == {m: Decimal(v) for m, v in t["payments_settled_by_month"].items()}


def landed_versions(home) -> dict[tuple, list]:
    """Every consumer version in the landed exports, read with plain json (not our decoder)."""
    versions: dict[tuple, list] = {}
    for tid in TENANTS:
        landing = home / f"landing/tenant={tid}/table=Consumer/AWSDynamoDB"
        for s in (json.loads(p.read_text()) for p in landing.glob("*/manifest-summary.json")):
            for entry in map(json.loads, (home / "landing" / s["manifestFilesS3Key"]).read_text().splitlines()):
                for line in gzip.decompress((home / "landing" / entry["dataFileS3Key"]).read_bytes()).splitlines():
                    doc = json.loads(line)
                    image = doc.get("Item") or doc.get("NewImage")
                    if image:
                        versions.setdefault((tid, image["id"]["S"]), []).append(
                            (int(image["_version"]["N"]), image["status"]["S"]))
    return versions


def test_scd2_history_of_a_consumer_who_changed_status_twice(world, wh):
    home, _, _ = world
    versions = landed_versions(home)
    changed = [k for k, v in versions.items() if len({s for _, s in v}) >= 3]
    assert changed, "the simulation should have consumers whose status changed twice"
    (tid, cid) = changed[0]
    key = pseudonym(local_key(home, tid), tid, cid)  # the key computed here, by the documented rule
    rows = wh.query("SELECT version, status, valid_from, valid_to FROM core.dim_consumer "
                    "WHERE consumer_key = ? ORDER BY valid_from", [key])
    assert [(r["version"], r["status"]) for r in rows] == sorted(set(versions[(tid, cid)]))
    assert all(a["valid_to"] == b["valid_from"] for a, b in zip(rows, rows[1:], strict=False))
    assert rows[-1]["valid_to"] is None


def test_replayed_and_shuffled_batches_change_nothing(golden_lake, wh, fresh, registry):
    """A replay of every batch loads nothing; the same batches fed in another order, one at a time,
    each load followed by an incremental refresh, end with the same marts."""
    tables = [f"mart.{m}" for m in MARTS]
    before = snapshot(wh, tables)
    again = wh.load(golden_lake.batches)
    assert again.loaded == 0 and again.skipped == len(golden_lake.batches)
    wh.refresh(registry)
    assert snapshot(wh, tables) == before
    other = fresh()
    other.register_lake(golden_lake.raw, golden_lake.protected)
    shuffled = list(golden_lake.batches)
    random.Random(5).shuffle(shuffled)
    for i in range(0, len(shuffled), 40):
        assert other.load(shuffled[i:i + 40]).failed == []
        other.refresh(registry)
    assert snapshot(other, tables) == before


def test_incremental_refresh_equals_a_full_rebuild_table_by_table(wh, registry):
    tables = [t.qualified for t in wh.derived]
    incremental = snapshot(wh, tables)
    wh.refresh(registry, full=True)
    assert snapshot(wh, tables) == incremental


def test_agency_session_sees_only_its_tenant(wh, registry):
    wh.as_agency("agency-002")
    for table in ("agency_snapshot", "enrolment_funnel", "agency_kpis_monthly", "creditor_exposure_by_agency"):
        tenants = {r["tenant_id"] for r in wh.query(f"SELECT DISTINCT tenant_id FROM mart_agency.{table}")}
        assert tenants == {"agency-002"}, table
    assert {r["tenant_id"] for r in wh.query("SELECT DISTINCT tenant_id FROM lake_protected_agency.debt")} == \
        {"agency-002"}
    # the cross-agency schema shows every registered agency
    assert {r["tenant_id"] for r in wh.query("SELECT tenant_id FROM mart.agency_snapshot")} == set(registry.by_id)


def test_lake_views_show_the_lakes_current_files(golden_lake, wh):
    for tid in TENANTS:
        published = sum(b.rows for b in golden_lake.of(tid, "Debt"))
        for view in ("lake.debt", "lake_protected.debt"):
            assert wh.query(f"SELECT COUNT(*) AS n FROM {view} WHERE tenant_id = ?", [tid])[0]["n"] == published
    # consumer_key is dim_consumer's key: the protected lake joins to the warehouse, not to a person
    keys = {r["consumer_key"] for r in wh.query("SELECT DISTINCT consumer_key FROM lake_protected.consumer")}
    assert keys == {r["consumer_key"] for r in wh.query("SELECT DISTINCT consumer_key FROM core.dim_consumer")}
    debt_keys = {r["consumer_key"] for r in wh.query("SELECT DISTINCT consumer_key FROM lake_protected.debt")}
    assert debt_keys and debt_keys <= keys


def test_post_load_checks_pass_on_the_golden_warehouse(wh):
    assert wh.check(TENANTS) == []
    assert wh.check() == []  # every tenant the audit knows


def test_stage_is_empty_after_every_load(wh):
    for t in wh.catalogue.of(schema="stage"):
        assert wh.query(f"SELECT COUNT(*) AS n FROM {t.qualified}")[0]["n"] == 0, t.qualified
