"""The incremental refresh equals the full rebuild, table by table, for any sequence of loads:
random inserts, updates, removes, soft deletes and re-snapshots over two agencies that share item
ids, late batches (event times in any order) and replayed ones, each load followed by an
incremental refresh. And the same batches loaded at once give the same warehouse."""

import shutil
import tempfile
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tenantlake.warehouse.duckdb import DuckDBWarehouse
from tests.tenantlake.warehouse.conftest import Lake, at

pytestmark = pytest.mark.slow
TENANTS = ["agency-001", "agency-002"]
money = st.decimals(min_value=0, max_value=5000, places=2).map(Decimal)


@st.composite
def item(draw, entity: str) -> dict:
    # few ids, so changes meet: the same debt moving between consumers, a plan enrolling a changed debt
    i, c = draw(st.integers(0, 1)), f"c{draw(st.integers(0, 1))}"
    if entity == "Consumer":
        return {"id": f"c{i}", "status": draw(st.sampled_from(["LEAD", "APPLYING", "ENROLLED", "DROPPED", "PAUSED"])),
                "date_of_birth": date(1950, 1, 1) + timedelta(days=draw(st.integers(0, 20000))),
                "postal_code": "94110", "household_size": draw(st.integers(1, 5)), "created_at": at(-24 * i)}
    if entity == "Debt":
        return {"id": f"d{i}", "consumer_id": c, "balance": draw(money), "minimum_payment": draw(money),
                "creditor_name": draw(st.sampled_from(["Chase", "JPMCB CARD", "Capital One", "ZEPHYR LENDING #1234"]))}
    if entity == "Plan":
        return {"id": f"p{i}", "consumer_id": c, "status": draw(st.sampled_from(["PROPOSED", "ACTIVE", "COMPLETED"])),
                "monthly_payment": draw(money), "start_date": date(2026, draw(st.integers(9, 11)), 1),
                "enrolled_debt_ids": draw(st.lists(st.sampled_from(["d0", "d1"]), max_size=2, unique=True))}
    if entity == "Payment":
        return {"id": f"y{i}", "plan_id": f"p{i % 2}", "consumer_id": c, "amount": draw(money),
                "status": draw(st.sampled_from(["SETTLED", "SCHEDULED"])), "paid_at": at(draw(st.integers(-800, 80)))}
    if entity == "Application":
        return {"id": f"a{i}", "consumer_id": c, "status": draw(st.sampled_from(["SUBMITTED", "APPROVED"])),
                "submitted_at": at(-30), "decided_at": at(draw(st.integers(-20, 40)))}
    return {"id": f"i{i}", "consumer_id": c, "monthly_amount": draw(money)}  # Income


@st.composite
def change(draw, entity: str) -> dict:
    row = draw(item(entity))
    op = draw(st.sampled_from(["snapshot", "insert", "modify", "modify", "remove", "soft_delete"]))
    when = at(draw(st.integers(0, 72)))  # any order: later batches may carry earlier events
    if op == "remove":
        return {"id": row["id"], "_op": "remove", "_event_ts": when}
    if op == "soft_delete":
        return {**row, "is_deleted": True, "_op": "modify", "_event_ts": when}
    return {**row, "_op": op, "_event_ts": when}


@st.composite
def history(draw) -> list[list[tuple]]:
    """Loads, each a few batches: (tenant, entity, rows), or ("replay", n) for an earlier batch."""
    loads, made = [], 0
    for _ in range(draw(st.integers(1, 5))):
        batches = []
        for _ in range(draw(st.integers(1, 4))):
            if made and draw(st.integers(0, 5)) == 0:
                batches.append(("replay", draw(st.integers(0, made - 1))))
                continue
            entity = draw(st.sampled_from(["Consumer", "Debt", "Debt", "Plan", "Payment", "Application", "Income"]))
            rows = draw(st.lists(change(entity), min_size=1, max_size=4))
            batches.append((draw(st.sampled_from(TENANTS)), entity, rows))
            made += 1
        loads.append(batches)
    return loads


A = "agency-001"
# Shapes a random history reaches only now and then, each a way to leave a stale row behind:
MOVED = [  # a debt moves to another consumer: the old consumer's budget must lose it
    [(A, "Consumer", [{"id": "c0", "status": "LEAD"}, {"id": "c1", "status": "LEAD"}]),
     (A, "Debt", [{"id": "d0", "consumer_id": "c0", "minimum_payment": Decimal(100), "balance": Decimal(5)}])],
    [(A, "Debt", [{"id": "d0", "consumer_id": "c1", "minimum_payment": Decimal(100), "balance": Decimal(5),
                   "_op": "modify", "_event_ts": at(5)}])]]
ENROLLED = [  # a plan enrolls a debt whose balance changes later: the plan's enrolled balance follows
    [(A, "Plan", [{"id": "p0", "consumer_id": "c0", "status": "ACTIVE", "enrolled_debt_ids": ["d0"]}]),
     (A, "Debt", [{"id": "d0", "consumer_id": "c0", "balance": Decimal(10), "creditor_name": "Chase"}])],
    [(A, "Debt", [{"id": "d0", "consumer_id": "c0", "balance": Decimal(40), "creditor_name": "JPMCB CARD",
                   "_op": "modify", "_event_ts": at(30)}])]]
NEW_DAY = [  # a new day of another debt's data: the unchanged debt gets its snapshot for that day
    [(A, "Debt", [{"id": "d0", "consumer_id": "c0", "balance": Decimal(10)},
                  {"id": "d1", "consumer_id": "c0", "balance": Decimal(7)}])],
    [(A, "Debt", [{"id": "d1", "consumer_id": "c0", "balance": Decimal(8), "_op": "modify", "_event_ts": at(50)}])],
    [("replay", 0), (A, "Debt", [{"id": "d1", "_op": "remove", "_event_ts": at(72)}])]]
ENROLMENT = [  # a consumer's plan becomes ACTIVE after their application: enrolled_at appears
    [(A, "Application", [{"id": "a0", "consumer_id": "c0", "status": "APPROVED", "submitted_at": at(-30),
                          "decided_at": at(-2)}])],
    [(A, "Plan", [{"id": "p0", "consumer_id": "c0", "status": "ACTIVE", "_op": "insert", "_event_ts": at(10)}])]]


def state(w) -> dict[str, list]:
    tables = [t.qualified for t in w.derived] + [f"core.{p}_{e}" for p in ("current", "history")
                                                 for e in ("consumer", "debt", "plan", "payment", "application",
                                                           "income")]
    return {t: sorted(map(repr, w._fetch(f"SELECT * FROM {t}"))) for t in tables}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(loads=history())
@example(loads=MOVED)
@example(loads=ENROLLED)
@example(loads=NEW_DAY)
@example(loads=ENROLMENT)
def test_incremental_refresh_equals_full_rebuild(loads, empty_warehouse, registry):
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(Path(tmp) / "lake")
        shutil.copy(empty_warehouse, Path(tmp) / "a.duckdb")
        shutil.copy(empty_warehouse, Path(tmp) / "b.duckdb")
        step, once = DuckDBWarehouse(str(Path(tmp) / "a.duckdb")), DuckDBWarehouse(str(Path(tmp) / "b.duckdb"))
        try:
            published = []
            for n, batches in enumerate(loads):
                handed = []
                for b in batches:
                    if b[0] == "replay":
                        handed.append(published[b[1]])
                        continue
                    tenant, entity, rows = b
                    for line, row in enumerate(rows, 1):
                        row.setdefault("_line", line)
                    published.append(lake.publish(tenant, entity, f"x{len(published):03d}", rows,
                                                  "FULL_EXPORT" if n == 0 else "INCREMENTAL_EXPORT"))
                    handed.append(published[-1])
                report = step.load(handed)
                assert report.failed == [] and report.problems == []
                step.refresh(registry)
            incremental = state(step)
            step.refresh(registry, full=True)
            rebuilt = state(step)
            for table in incremental:
                assert incremental[table] == rebuilt[table], table
            once.load(published)  # every batch at once, in one load, then one refresh
            once.refresh(registry)
            assert state(once) == rebuilt
        finally:
            step.close()
            once.close()
