"""Reload one tenant, erase one consumer, remove a whole tenant: each reaches every layer of the
warehouse for its target, and leaves every other tenant (and consumer) exactly as it was."""

import pytest

from tenantlake.warehouse.checks import reconcile
from tests.tenantlake.warehouse.conftest import TENANTS

pytestmark = pytest.mark.slow
A, OTHERS = TENANTS[0], TENANTS[1:]


@pytest.fixture
def golden(fresh, golden_lake, registry):
    w = fresh()
    w.register_lake(golden_lake.raw, golden_lake.protected)
    assert w.load(golden_lake.batches).failed == []
    w.refresh(registry)
    return w


def tenant_tables(w) -> list[str]:
    return [t.qualified for t in w.catalogue if t.kind in ("derived", "entity", "table") and
            "tenant_id" in t.column_names and t.schema != "stage"]


def rows_of(w, tenants, where: str = "", params=()) -> dict[str, list]:
    """Every row of the tenants in every tenant-scoped table, as text (counts, sums and values)."""
    marks = ", ".join("?" * len(tenants))
    return {t: sorted(map(repr, w._fetch(f"SELECT * FROM {t} WHERE tenant_id IN ({marks}) {where}",
                                         [*tenants, *params])))
            for t in tenant_tables(w)}


def test_reloading_one_tenant_restores_it_and_touches_no_other(golden, golden_lake, registry):
    others, mine = rows_of(golden, OTHERS), rows_of(golden, [A])
    golden._execute(f"DELETE FROM core.current_debt WHERE tenant_id = '{A}' AND balance > 1000")  # damage
    golden._execute(f"DELETE FROM core.history_plan WHERE tenant_id = '{A}'")
    assert rows_of(golden, [A]) != mine
    report = golden.reload_tenant(A, golden_lake.batches, registry)  # handed every batch: only A's load
    assert report.loaded == len(golden_lake.of(A)) and report.skipped == 0
    assert rows_of(golden, OTHERS) == others
    assert {t: r for t, r in rows_of(golden, [A]).items() if not t.startswith("ops.")} == \
        {t: r for t, r in mine.items() if not t.startswith("ops.")}  # the audit's loaded_at is new
    assert golden.check([A]) == []


def test_erasing_a_consumer_reaches_every_layer_and_no_one_else(golden, registry):
    key, debts, plans = next((k, d, p) for k, d, p in (
        (r["consumer_key"], r["debts"], r["plans"]) for r in golden.query(
            "SELECT c.consumer_key, LIST(DISTINCT d.id) AS debts, LIST(DISTINCT p.id) AS plans "
            "FROM core.current_consumer c JOIN core.current_debt d USING (tenant_id, consumer_key) "
            "JOIN core.current_plan p USING (tenant_id, consumer_key) WHERE c.tenant_id = ? "
            "GROUP BY c.consumer_key ORDER BY c.consumer_key", [A])) if len(d) >= 2)
    others = rows_of(golden, OTHERS)
    before = {t: len(r) for t, r in rows_of(golden, [A]).items()}
    removed = golden.erase_consumer(A, key, {"Debt": set(debts), "Plan": set(plans)})
    assert removed["core.history_consumer"] > 0 and removed["core.current_debt"] == len(debts)
    # no row of any table or view of the warehouse holds the consumer's key or an id of theirs
    mine = {key, *debts, *plans}
    for relation in [f"{r['s']}.{r['t']}" for r in golden.query(
            "SELECT table_schema AS s, table_name AS t FROM information_schema.tables "
            "WHERE table_schema IN ('stage', 'core', 'mart', 'ops')")]:
        for row in golden._fetch(f"SELECT * FROM {relation}"):
            flat = {x for v in row for x in (v if isinstance(v, list) else [v]) if not isinstance(x, dict)}
            assert not mine & flat, relation
    assert rows_of(golden, OTHERS) == others
    after = {t: len(r) for t, r in rows_of(golden, [A]).items()}
    assert after["core.dim_consumer"] < before["core.dim_consumer"] and after["core.fact_budget"] == \
        before["core.fact_budget"] - 1
    assert reconcile(golden) == []  # the marts follow core without the consumer


def test_removing_a_tenant_leaves_a_record_and_everyone_else_as_they_were(golden, registry):
    others = rows_of(golden, OTHERS)
    batches = golden.query("SELECT COUNT(*) AS n FROM ops.load_audit WHERE tenant_id = ?", [A])[0]["n"]
    removed = golden.remove_tenant(A)
    assert removed["core.history_debt"] > 0 and removed["mart.agency_snapshot"] == 1
    for table, rows in rows_of(golden, [A]).items():
        if table != "ops.load_audit":
            assert rows == [], table
    (record,) = golden.query("SELECT entity, export_id, kind, rows_expected FROM ops.load_audit WHERE tenant_id = ?",
                             [A])
    assert record == {"entity": "*", "export_id": "removed", "kind": "TENANT_REMOVED", "rows_expected": batches}
    assert rows_of(golden, OTHERS) == others
    golden.refresh(registry)  # the registry still lists it: the warehouse does not bring it back
    assert golden.query("SELECT COUNT(*) AS n FROM core.dim_agency WHERE tenant_id = ?", [A]) == [{"n": 0}]
    assert rows_of(golden, OTHERS) == others
    assert golden.check(OTHERS) == []


def test_removing_a_tenant_leaves_nothing_pending_that_came_from_it(golden, registry):
    for table in ("core.current_debt", "core.history_debt"):  # a creditor spelling only A uses
        golden._execute(f"UPDATE {table} SET creditor_name = 'ZQ ONLY AGENCY ONE CU' WHERE tenant_id = '{A}'")
    golden.refresh(registry, full=True)
    spelled = "SELECT COUNT(*) AS n FROM core.dim_creditor WHERE spelling = 'ZQ ONLY AGENCY ONE CU'"
    assert golden.query(spelled) == [{"n": 1}]
    assert golden.query("SELECT COUNT(*) AS n FROM ops.refresh_pending") == [{"n": 0}]
    golden.remove_tenant(A)
    # recomputing the cross-tenant tables without A drops its spelling; that change is carried
    # through at once, not left as a pending row (tenant NULL) holding A's spelling
    assert golden.query(spelled) == [{"n": 0}]
    assert golden.query("SELECT source, tenant_id, item_key FROM ops.refresh_pending") == []
