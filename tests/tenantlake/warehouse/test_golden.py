"""Golden tests: the simulator's history through lake and warehouse (real DuckDB); every mart
figure equals the ground truth the simulator computed independently, to the cent."""

import gzip
import json
from decimal import Decimal

import pytest

from tenantlake.pseudonyms import local_key, pseudonym
from tenantlake.warehouse import DuckDBWarehouse, load_lake
from tests.tenantlake.warehouse.conftest import TENANTS

pytestmark = pytest.mark.slow


def by_tenant(rows, key="tenant_id"):
    return {r[key]: r for r in rows}


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
    for spelling, creditor in dim.items():
        assert creditor == spelling_to_truth[spelling].upper(), spelling


def test_funnel_cohorts_and_monthly_payments_equal_truth(world, wh):
    _, _, truth = world
    funnel = by_tenant(wh.query("SELECT * FROM mart.enrolment_funnel"))
    cohorts = wh.query("SELECT tenant_id, SUM(proposed) p, SUM(active) a, SUM(completed) c, SUM(cancelled) x "
                       "FROM mart.plan_outcomes_by_cohort GROUP BY tenant_id")
    kpis = wh.query("SELECT tenant_id, month, payments_collected FROM mart.agency_kpis_monthly WHERE payments_settled > 0")
    for tid in TENANTS:
        t = truth["tenants"][tid]
        statuses = {s.lower(): n for s, n in t["consumers_by_status"].items()}
        assert {k: funnel[tid][k if k != "lead" else "leads"] for k in statuses} == statuses
        plans = next(r for r in cohorts if r["tenant_id"] == tid)
        assert {"PROPOSED": plans["p"], "ACTIVE": plans["a"], "COMPLETED": plans["c"], "CANCELLED": plans["x"]} == {
            s: t["plans_by_status"].get(s, 0) for s in ("PROPOSED", "ACTIVE", "COMPLETED", "CANCELLED")}
        months = {str(r["month"])[:7]: r["payments_collected"] for r in kpis if r["tenant_id"] == tid}
        assert months == {m: Decimal(v) for m, v in t["payments_settled_by_month"].items()}


def test_scd2_history_of_a_consumer_who_changed_status_twice(world, wh):
    """Expected versions come from reading the landed exports with plain json, not from the code."""
    home, _, _ = world
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
    changed = [k for k, v in versions.items() if len({s for _, s in v}) >= 3]
    assert changed, "the simulation should have consumers whose status changed twice"
    (tid, cid) = changed[0]
    key = pseudonym(local_key(home, tid), tid, cid)
    rows = wh.query("SELECT version, status, valid_from, valid_to FROM core.dim_consumer "
                    "WHERE consumer_key = ? ORDER BY valid_from", [key])
    assert [(r["version"], r["status"]) for r in rows] == sorted(set(versions[(tid, cid)]))
    assert all(a["valid_to"] == b["valid_from"] for a, b in zip(rows, rows[1:], strict=False))
    assert rows[-1]["valid_to"] is None


def test_replayed_and_out_of_order_batches_change_nothing(world, wh, registry, tmp_path):
    home, lake, _ = world
    marts = ["agency_snapshot", "creditor_exposure", "enrolment_funnel", "plan_outcomes_by_cohort", "agency_kpis_monthly"]

    def snapshot(w):
        return {m: sorted(map(str, w.query(f"SELECT * FROM mart.{m}"))) for m in marts}
    before = snapshot(wh)
    again = load_lake(wh, lake, registry, TENANTS)  # a replay: every batch is already in load_audit
    assert again["loaded"] == 0 and again["skipped"] > 0
    assert snapshot(wh) == before
    # out of order: a fresh warehouse fed the newest exports first
    from tenantlake.lake import commits
    backwards = DuckDBWarehouse(str(tmp_path / "wh.duckdb"), lambda t: local_key(home, t))
    for tid in TENANTS:
        for entity in registry.tenant(tid).tables:
            for c in reversed(commits(lake, entity, tid)):
                backwards.load_batch(c, lake)
    backwards.refresh(registry)
    assert snapshot(backwards) == before
    backwards.close()


def test_agency_session_sees_only_its_tenant(wh, registry):
    wh.as_agency("agency-002")
    for table in ("agency_snapshot", "enrolment_funnel", "agency_kpis_monthly", "creditor_exposure_by_agency"):
        tenants = {r["tenant_id"] for r in wh.query(f"SELECT DISTINCT tenant_id FROM mart_agency.{table}")}
        assert tenants == {"agency-002"}, table
    # the cross-agency schema shows every registered agency
    assert {r["tenant_id"] for r in wh.query("SELECT tenant_id FROM mart.agency_snapshot")} == set(registry.by_id)


def clear_pii(home) -> set[str]:
    """Every consumer's identifying values, from the simulator's truth (not from our tables)."""
    pii = set()
    for tid in TENANTS:
        for line in gzip.decompress((home / f"truth/{tid}/Consumer.jsonl.gz").read_bytes()).splitlines():
            item = json.loads(line)
            pii |= {item[a]["S"] for a in ("email", "phone", "postalCode", "dateOfBirth", "firstName", "lastName")
                    if a in item}
            pii.add(item["id"]["S"])  # consumer ids appear only as keyed pseudonyms
    return pii


def test_no_clear_pii_reaches_core_or_mart(world, wh):
    home, _, _ = world
    pii = clear_pii(home)
    tables = wh.query("SELECT table_schema, table_name FROM information_schema.tables "
                      "WHERE table_schema IN ('mart') OR (table_schema = 'core' AND table_name NOT LIKE 'history_%' "
                      "AND table_name NOT LIKE 'current_%')")
    assert len(tables) >= 15
    for t in tables:
        for row in wh.query(f"SELECT * FROM {t['table_schema']}.{t['table_name']} LIMIT 5000"):
            assert not pii & {str(v) for v in row.values()}, t


def test_lake_views_play_spectrum_over_committed_files(world, wh):
    _, lake, _ = world
    from tenantlake.lake import commits
    for tid in TENANTS:
        published = sum(c.rows for c in commits(lake, "Debt", tid))
        assert wh.query("SELECT COUNT(*) AS n FROM lake.debt WHERE tenant_id = ?", [tid])[0]["n"] == published


def test_protected_views_show_every_lake_row_but_no_clear_pii(world, wh):
    home, _, _ = world
    pii = clear_pii(home)
    from tenantlake.contracts import ENTITIES
    for entity in ENTITIES:
        name = entity.lower()
        rows = wh.query(f"SELECT * FROM lake_protected.{name}")
        assert len(rows) == wh.query(f"SELECT COUNT(*) AS n FROM lake.{name}")[0]["n"] > 0, entity
        for row in rows:
            assert not pii & {str(v) for v in row.values()}, (entity, row)
    # consumer_key is dim_consumer's key: the protected lake joins to the warehouse, not to a person
    keys = {r["consumer_key"] for r in wh.query("SELECT DISTINCT consumer_key FROM lake_protected.consumer")}
    assert keys == {r["consumer_key"] for r in wh.query("SELECT DISTINCT consumer_key FROM core.dim_consumer")}
    debt_keys = {r["consumer_key"] for r in wh.query("SELECT DISTINCT consumer_key FROM lake_protected.debt")}
    assert debt_keys and debt_keys <= keys


def test_refilling_a_mart_gives_what_creating_it_gave(wh):
    """Redshift refreshes the RLS-protected marts by DELETE + INSERT of their CTAS query (so the
    policies stay attached); the same refill on DuckDB must reproduce the created table exactly."""
    from tenantlake.warehouse import RLS_MARTS, refill, sql_text, statements

    for mart in RLS_MARTS:
        schema, table = mart.split(".")
        before = sorted(map(str, wh.query(f"SELECT * FROM {mart}")))
        wh.con.execute("BEGIN TRANSACTION")
        for statement in refill(statements(sql_text(schema, table, "duckdb"))[0]):
            wh.con.execute(statement)
        wh.con.execute("COMMIT")
        assert before and sorted(map(str, wh.query(f"SELECT * FROM {mart}"))) == before, mart


def test_mart_tables_have_comments(wh):
    rows = wh.query("SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = 'mart'")
    assert rows and all(r["comment"] for r in rows)


def test_post_load_checks_pass_and_catch_a_count_that_does_not_reconcile(world, wh, registry):
    import dataclasses

    from tenantlake.loading import post_load_checks
    from tenantlake.warehouse import lake_batches

    _, lake, _ = world
    batches = {k: v for k, v in lake_batches(lake, registry).items() if k[0] in TENANTS}
    assert post_load_checks(wh, batches) == []
    key = ("agency-002", "Debt")
    batches[key] = [dataclasses.replace(batches[key][0], rows=batches[key][0].rows + 1), *batches[key][1:]]
    problems = post_load_checks(wh, batches)
    assert len(problems) == 1 and problems[0].startswith("agency-002 Debt: ")
    assert "published in the lake" in problems[0]


def test_a_batch_that_fails_inside_its_transaction_leaves_core_as_it_was(world, tmp_path):
    """Scratch work (stage, the MERGE's winners) happens outside the transaction; history, current
    and the audit row are one unit. A failure at its last statement rolls all of them back, and the
    next load applies the batch whole."""
    import dataclasses

    from tenantlake.lake import commits
    from tenantlake.warehouse import LoadError

    home, lake, _ = world
    first, second = commits(lake, "Debt", "agency-001")[:2]
    w = DuckDBWarehouse(str(tmp_path / "wh.duckdb"), lambda t: local_key(home, t))
    w.load_batch(first, lake)

    def state():
        return w.query("SELECT (SELECT COUNT(*) FROM core.history_debt) AS h, "
                       "(SELECT SUM(balance) FROM core.current_debt) AS b, (SELECT COUNT(*) FROM ops.load_audit) AS a")
    before = state()

    class FailsAtTheAudit:
        def __init__(self, con):
            self.con = con

        def execute(self, sql, *args):
            if sql.startswith("INSERT INTO ops.load_audit"):
                raise RuntimeError("disk full")
            return self.con.execute(sql, *args)

    real, w.con = w.con, FailsAtTheAudit(w.con)
    with pytest.raises(RuntimeError, match="disk full"):
        w.load_batch(second, lake)
    w.con = real
    assert state() == before and not w.loaded(second)
    with pytest.raises(LoadError, match=rf"staged {second.rows} rows \(0 of another tenant\), the commit marker says"):
        w.load_batch(dataclasses.replace(second, rows=second.rows + 1), lake)
    assert state() == before
    assert not w.load_batch(second, lake).skipped
    after = state()
    assert after[0]["h"] == before[0]["h"] + second.rows and after[0]["a"] == 2
    w.close()
