"""The post-load checks catch what a broken load would do: a MERGE keyed without tenant_id, a
latest-wins that lets an older row win, a lost or foreign history row, a mart that disagrees with
core. The breakages are made in the load's own rendered statements (the mutation, not a fake)."""

from decimal import Decimal

import sqlglot
from sqlglot import exp

from tests.tenantlake.warehouse.conftest import at

A, B = "agency-001", "agency-002"


def loaded(fresh, lake, registry, *loads):
    w = fresh()
    for batches in loads:
        w.register_lake(lake.raw, lake.protected)
        report = w.load(batches)
        assert report.failed == [] and report.problems == []
    w.refresh(registry)
    return w


def two_agencies_sharing_ids(lake):
    first = [lake.publish(A, "Debt", "e1", [
        {"id": "d1", "consumer_id": "c1", "balance": Decimal(100), "creditor_name": "Chase"},
        {"id": "d2", "consumer_id": "c1", "balance": Decimal(7), "creditor_name": "JPMCB CARD"}])]
    second = [lake.publish(B, "Debt", "e1", [{"id": "d1", "consumer_id": "c9", "balance": Decimal(5),
                                              "creditor_name": "Capital One", "_event_ts": at(1)}])]
    return first, second


def test_checks_pass_when_the_load_is_right(fresh, lake, registry):
    first, second = two_agencies_sharing_ids(lake)
    late = [lake.publish(A, "Debt", "e0", [{"id": "d1", "consumer_id": "c1", "balance": Decimal(1),
                                            "_event_ts": at(-5)}])]
    w = loaded(fresh, lake, registry, first, second, late)
    assert w.check([A, B]) == []


def test_a_merge_keyed_without_tenant_id_fails_the_checks(fresh, lake, registry):
    first, second = two_agencies_sharing_ids(lake)
    w = fresh()
    delete, insert = w._template("merge", "Debt")
    tree = sqlglot.parse_one(delete, read="duckdb")
    where = tree.args["where"]
    keep = [c for c in where.this.flatten() if "tenant_id" not in c.sql()]  # the mutation: by id only
    where.set("this", exp.and_(*keep))
    w._rendered.put(("load", "merge", "Debt"), [tree.sql("duckdb"), insert])
    for batches in (first, second):
        w.register_lake(lake.raw, lake.protected)
        w.load(batches)
    w.refresh(registry)
    # agency-002's d1 matched agency-001's and took it over: agency-001 lost its d1
    assert w.check([A, B]) == [f"{A} Debt: core.current_debt has 1 keys of the lake missing"]


def test_a_latest_wins_that_lets_an_older_row_win_fails_the_checks(fresh, lake, registry):
    first, _ = two_agencies_sharing_ids(lake)
    late = [lake.publish(A, "Debt", "e0", [{"id": "d1", "consumer_id": "c1", "balance": Decimal(1),
                                            "_event_ts": at(-5)}])]
    w = fresh()
    winners = sqlglot.parse_one(w._template("winners", "Debt")[0], read="duckdb")
    where = winners.find(exp.Select).args["where"]
    where.set("this", where.this.left)  # the mutation: the newest in the load, newer than current or not
    w._rendered.put(("load", "winners", "Debt"), [winners.sql("duckdb")])
    for batches in (first, late):
        w.register_lake(lake.raw, lake.protected)
        w.load(batches)
    w.refresh(registry)
    assert w.query(f"SELECT balance FROM core.current_debt WHERE tenant_id = '{A}' AND id = 'd1'") == [
        {"balance": Decimal(1)}]  # the late row won
    assert w.check([A]) == [f"{A} Debt: core.current_debt has 1 rows older than the lake's latest version"]


def test_history_that_lost_or_gained_rows_fails_the_checks(fresh, lake, registry):
    first, second = two_agencies_sharing_ids(lake)
    w = loaded(fresh, lake, registry, first, second)
    w._execute(f"DELETE FROM core.history_debt WHERE tenant_id = '{A}' AND id = 'd2'")
    w._execute(f"UPDATE core.history_debt SET _export_id = 'nowhere' WHERE tenant_id = '{B}'")
    assert sorted(w.check([A, B])) == [
        f"{A} Debt: 1 rows in core.history_debt, 2 in lake_protected.debt",
        f"{B} Debt: 1 rows in core.history_debt from no batch the load audit recorded for this tenant"]


def test_a_mart_that_disagrees_with_core_fails_the_checks(fresh, lake, registry):
    first, second = two_agencies_sharing_ids(lake)
    w = loaded(fresh, lake, registry, first, second)
    w._execute(f"UPDATE mart.agency_snapshot SET debt_balance = debt_balance + 0.01 WHERE tenant_id = '{B}'")
    w._execute("UPDATE mart.creditor_exposure SET total_balance = total_balance - 1")
    problems = w.check([A])  # the tenant-level checks look at the tenants given; the fleet ones at all
    assert problems == [
        "mart.creditor_exposure: fleet exposure equals core's live debts: fleet: 110.00 in the mart, 112.00 in core"]
    assert f"mart.agency_snapshot: debt balance equals core's live debts: {B}: 5.01 in the mart, 5.00 in core" \
        in w.check([B])


def test_an_approval_alone_in_its_month_is_counted_in_that_month(fresh, lake, registry):
    """An application submitted in September and approved in October, with nothing else in October:
    the approval has its own month (it was counted in no month, found by an independent fleet
    test), and the mart's approvals reconcile with core's."""
    batches = [lake.publish(A, "Consumer", "e1", [{"id": "c1", "status": "LEAD", "created_at": at(0)}]),
               lake.publish(A, "Application", "e1", [{"id": "a1", "consumer_id": "c1", "status": "APPROVED",
                                                      "submitted_at": at(0), "decided_at": at(40 * 24)}])]
    w = loaded(fresh, lake, registry, batches)
    rows = w.query("SELECT month, new_consumers, applications_submitted, applications_approved, approval_rate "
                   f"FROM mart.agency_kpis_monthly WHERE tenant_id = '{A}' ORDER BY month")
    assert [tuple(r.values())[1:] for r in rows] == [(1, 1, 0, None), (0, 0, 1, Decimal("1.0000"))]
    assert rows[1]["month"] > rows[0]["month"] and w.check([A]) == []
    w._execute(f"DELETE FROM mart.agency_kpis_monthly WHERE tenant_id = '{A}' AND applications_approved > 0")
    assert "mart.agency_kpis_monthly: applications approved equal core's approved decisions: " \
           f"{A}: 0 in the mart, 1 in core" in w.check([A])


def test_a_consumer_removed_by_its_keys_alone_makes_no_month_of_its_own(fresh, lake, registry):
    """A NEW_IMAGE export's delete line carries only Keys: the removed consumer has no created_at,
    and the months it was listed under made a row with a NULL month (an independent DAG-level
    fleet test); a removed consumer alone in its month made a row of zeros."""
    batches = [lake.publish(A, "Consumer", "e1", [{"id": "c1", "status": "LEAD", "created_at": at(0)},
                                                   {"id": "c2", "status": "LEAD", "created_at": at(-40 * 24)}]),
               lake.publish(A, "Consumer", "e2", [{"id": "c3", "_op": "remove", "_event_ts": at(1)},
                                                   {"id": "c2", "_op": "remove", "_event_ts": at(1)}],
                            kind="INCREMENTAL_EXPORT")]
    w = loaded(fresh, lake, registry, batches)
    rows = w.query(f"SELECT month, new_consumers FROM mart.agency_kpis_monthly WHERE tenant_id = '{A}'")
    assert len(rows) == 1 and rows[0]["month"] is not None and rows[0]["new_consumers"] == 1
    assert w.check([A]) == []


def test_a_mart_row_without_its_whole_grain_or_twice_fails_the_checks(fresh, lake, registry):
    w = loaded(fresh, lake, registry, [lake.publish(A, "Consumer", "e1", [{"id": "c1", "status": "LEAD", "created_at": at(0)}])])
    assert w.check([A]) == []
    w._execute(f"INSERT INTO mart.agency_kpis_monthly (tenant_id, month) VALUES ('{A}', NULL)")
    w._execute("INSERT INTO mart.agency_kpis_monthly SELECT * FROM mart.agency_kpis_monthly WHERE month IS NOT NULL")
    problems = w.check([A])
    assert "mart.agency_kpis_monthly: 1 rows with a NULL in its grain (tenant_id, month)" in problems
    assert "mart.agency_kpis_monthly: 1 grain keys (tenant_id, month) held by more than one row" in problems
