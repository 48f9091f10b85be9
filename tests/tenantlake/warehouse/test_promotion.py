"""Promotion: a drifted attribute declared in the contract becomes a column of every entity table
(ALTER TABLE ... ADD COLUMN, one per statement); rows loaded before get its value from the lake
once the lake's promotion has filled the protected table from raw's `_extra` (tenantlake.lake.evolve,
tested there), by reloading the tenant (`_extra` itself never reaches the warehouse); and a value
the contract does not list is counted under its own name in the marts, never dropped."""

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq

from tenantlake.contracts import ENTITIES, Attribute
from tenantlake.warehouse.catalogue import load_catalogue
from tenantlake.warehouse.duckdb import DuckDBWarehouse
from tests.tenantlake.warehouse.conftest import at

A = "agency-001"


def promoted_debt():
    debt = ENTITIES["Debt"]
    return replace(debt, attributes=(*debt.attributes,
                                     Attribute("riskScore", "risk_score", "int", doc="The bureau's risk score."),
                                     Attribute("reviewedAt", "reviewed_at", "timestamp", doc="When it was reviewed.")))


def test_a_promoted_attribute_becomes_a_column_filled_from_the_lake(fresh, lake, registry, monkeypatch):
    w = fresh()
    extra = {"riskScore": {"N": "712"}, "reviewedAt": {"S": "2026-10-02T08:00:00Z"}, "bureauRef": {"S": "x-1"}}
    first = lake.publish(A, "Debt", "e1", [{"id": "d1", "consumer_id": "c1", "balance": Decimal(10),
                                            "_extra": json.dumps(extra)},
                                           {"id": "d2", "consumer_id": "c1", "balance": Decimal(20)}])
    w.register_lake(lake.raw, lake.protected)
    assert w.load(lake.batches).loaded == 1
    w.refresh(registry)
    path = w.path
    w.con.close()

    monkeypatch.setitem(ENTITIES, "Debt", promoted_debt())  # a data engineer declares the two attributes
    load_catalogue.cache_clear()
    w = DuckDBWarehouse(path, load_catalogue())
    try:
        assert {r["risk_score"] for r in w.query("SELECT risk_score FROM core.current_debt")} == {None}
        comment = w.query("SELECT comment FROM duckdb_columns() WHERE schema_name = 'core' "
                          "AND table_name = 'current_debt' AND column_name = 'risk_score'")
        assert comment == [{"comment": "The bureau's risk score."}]
        # the lake's promotion fills the protected file from raw (as tenantlake.lake.evolve does);
        # reloading the tenant brings the values to every layer
        protected = pq.read_table(first.files[0].path)
        pq.write_table(protected.append_column("risk_score", pa.array([712, None], pa.int64())).append_column(
            "reviewed_at", pa.array([datetime(2026, 10, 2, 8, tzinfo=UTC), None], pa.timestamp("us", tz="UTC"))),
            first.files[0].path)
        w.register_lake(lake.raw, lake.protected)
        w.reload_tenant(A, lake.batches, registry)
        for table in ("core.history_debt", "core.current_debt"):
            rows = {r["id"]: r for r in w.query(f"SELECT id, risk_score, reviewed_at FROM {table}")}
            assert rows["d1"]["risk_score"] == 712 and str(rows["d1"]["reviewed_at"]) == "2026-10-02 08:00:00+00:00"
            assert rows["d2"]["risk_score"] is None
        # files written after the promotion carry the column in its contract position; earlier files
        # and later ones load together
        lake.publish(A, "Debt", "e2", [{"id": "d2", "consumer_id": "c1", "balance": Decimal(21), "risk_score": 640,
                                        "_op": "modify", "_event_ts": at(3)}], "INCREMENTAL_EXPORT")
        w.register_lake(lake.raw, lake.protected)
        assert w.load(lake.batches).loaded == 1
        assert {r["id"]: r["risk_score"] for r in w.query("SELECT id, risk_score FROM core.current_debt")} == \
            {"d1": 712, "d2": 640}
        assert {r["risk_score"] for r in w.query("SELECT risk_score FROM lake_protected.debt")} == {712, None, 640}
        w.refresh(registry)
        assert w.check([A]) == []
    finally:
        w.close()
        load_catalogue.cache_clear()


def test_a_value_the_contract_does_not_list_counts_under_its_own_name(fresh, lake, registry):
    w = fresh()
    lake.publish(A, "Consumer", "e1", [{"id": "c1", "status": "ENROLLED"}, {"id": "c2", "status": "PAUSED"},
                                       {"id": "c3", "status": "PAUSED"}])
    lake.publish(A, "Plan", "e1", [{"id": "p1", "consumer_id": "c1", "status": "ON_HOLD"},
                                   {"id": "p2", "consumer_id": "c1", "status": "ACTIVE"}])
    w.load(lake.batches)
    w.refresh(registry)
    assert {r["status"]: r["consumers"] for r in w.query(
        "SELECT status, consumers FROM mart.consumers_by_status WHERE tenant_id = ?", [A])} == \
        {"ENROLLED": 1, "PAUSED": 2}
    funnel = w.query("SELECT consumers, enrolled, other_status FROM mart.enrolment_funnel WHERE tenant_id = ?", [A])
    assert funnel == [{"consumers": 3, "enrolled": 1, "other_status": 2}]
    plans = w.query("SELECT plans, active, other_status FROM mart.plan_outcomes_by_cohort WHERE tenant_id = ?", [A])
    assert plans == [{"plans": 2, "active": 1, "other_status": 1}]


def test_a_field_declared_inside_a_map_reaches_the_warehouse_tables(fresh, lake, registry, monkeypatch):
    """A new field declared inside the `bureau` map (and inside a tradeline, and inside each of a
    plan's concessions) is added to the warehouse's struct columns, and later loads carry it (the
    tables kept their old struct and every merge dropped the field: found by an independent test)."""
    from tenantlake import contracts

    w = fresh()
    lake.publish(A, "Debt", "e1", [{"id": "d1", "consumer_id": "c1", "balance": Decimal(10),
                                    "bureau": {"name": "TU", "pulledAt": None, "tradeline": None}}])
    w.register_lake(lake.raw, lake.protected)
    assert w.load(lake.batches).loaded == 1
    path = w.path
    w.con.close()

    bureau = contracts.SHAPES["bureau"]
    tradeline = bureau.field("tradeline").type
    grown = pa.struct([*bureau, ("score", pa.decimal128(18, 2))])
    grown = pa.struct([f if f.name != "tradeline" else pa.field("tradeline", pa.struct([*tradeline, ("closed", pa.string())]))
                       for f in grown])
    concession = contracts.SHAPES["concessions"].value_type
    monkeypatch.setitem(contracts.SHAPES, "bureau", grown)
    monkeypatch.setitem(contracts.SHAPES, "concessions", pa.list_(pa.struct([*concession, ("waived", pa.bool_())])))
    load_catalogue.cache_clear()
    w = DuckDBWarehouse(path, load_catalogue())
    try:
        for table in ("stage.debt", "core.current_debt", "core.history_debt", "core.current_plan"):
            column = "concessions" if table.endswith("plan") else "bureau"
            (t,) = w.query(f"SELECT data_type FROM duckdb_columns() WHERE schema_name || '.' || table_name = '{table}' "
                           f"AND column_name = '{column}'")
            assert ("waived BOOLEAN" if column == "concessions" else "score DECIMAL(18,2)") in t["data_type"], t
        lake.publish(A, "Debt", "e2", [{"id": "d1", "consumer_id": "c1", "balance": Decimal(11), "_op": "modify",
                                        "_event_ts": at(3), "bureau": {"name": "TU", "pulledAt": None, "score": Decimal("712.50"),
                                                                       "tradeline": {"opened": "2019", "highCredit": None,
                                                                                     "closed": "2026"}}}],
                     "INCREMENTAL_EXPORT")
        w.register_lake(lake.raw, lake.protected)
        assert w.load(lake.batches).loaded == 1
        (row,) = w.query("SELECT bureau.score AS s, bureau.tradeline.closed AS c FROM core.current_debt")
        assert row == {"s": Decimal("712.50"), "c": "2026"}
        assert w.ensure() == []  # grown once: idempotent
    finally:
        w.close()
        load_catalogue.cache_clear()
