"""Promotion: an attribute that drifted in is declared in the contract; the lake's tables gain the
column (files written before read it as null), old rows get their value from their kept `_extra`,
and rows published before and after read together. Expected values are written by hand."""

from __future__ import annotations

import dataclasses

import orjson
import pyarrow.parquet as pq
import pytest

from tenantlake import contracts
from tenantlake.contracts import Attribute
from tenantlake.ingest import ingest_export
from tenantlake.lake.evolve import layout, promote
from tenantlake.lake.read import new_batches, read
from tests.tenantlake.formats.kit import SUMMARY, debt, line, write_export

KEY = b"k" * 32


@pytest.fixture
def promoted_contract(monkeypatch):
    """Debt with riskScore declared (an int), the way a data engineer would add it to contracts.py."""
    def declare():
        debt_entity = contracts.ENTITIES["Debt"]
        risk = Attribute("riskScore", "risk_score", "int", doc="The bureau's risk score.")
        monkeypatch.setitem(contracts.ENTITIES, "Debt", dataclasses.replace(
            debt_entity, attributes=debt_entity.attributes + (risk,)))
    return declare


def test_a_promoted_attribute_is_filled_for_old_rows_from_extra(tmp_path, registry, promoted_contract):
    from tenantlake.cli import local_lake

    lake = local_lake(tmp_path / "lake")
    items = [debt(1, riskScore={"N": "712"}, note={"S": "keep me"}), debt(2), debt(3, riskScore={"S": "n/a"})]
    store = write_export(tmp_path / "landing", [b"".join(line(i) for i in items)])
    ingest_export(store, SUMMARY, lake, tenant_id="agency-001", entity="Debt", tenant=registry.tenant("agency-001"),
                  run_id="before", key_for=lambda t: KEY)
    _, snapshot = new_batches(lake, "Debt", None)

    promoted_contract()
    assert promote(lake, "Debt", workdir=str(tmp_path)) == {"raw": 1, "protected": 1}
    rows = {r["id"]: r for r in read(lake, "raw", "Debt").to_pylist()}
    assert rows["d-1"]["risk_score"] == 712 and orjson.loads(rows["d-1"]["_extra"]) == {"note": {"S": "keep me"}}
    assert rows["d-2"]["risk_score"] is None and rows["d-2"]["_extra"] is None
    # a value that does not convert to the declared type stays where it was: nothing is lost
    assert rows["d-3"]["risk_score"] is None and orjson.loads(rows["d-3"]["_extra"]) == {"riskScore": {"S": "n/a"}}
    protected = {r["id"]: r for r in read(lake, "protected", "Debt").to_pylist()}
    # taken from each row's raw row: `_extra` (unclassified, "keep me" in it) never leaves raw
    assert {k: r["risk_score"] for k, r in protected.items()} == {"d-1": 712, "d-2": None, "d-3": None}
    assert all("_extra" not in r for r in protected.values())
    assert not [p for p in (tmp_path / "lake").rglob("*.parquet") if "protected" in str(p) and b"keep me" in p.read_bytes()]
    for zone in ("raw", "protected"):  # rewritten in ingest's column order: Redshift's COPY reads by position
        (f,) = [t.file.file_path for t in lake.load(zone, "Debt").scan().plan_files()]
        assert pq.read_schema(f.removeprefix("file://")).names == layout(zone, contracts.ENTITIES["Debt"])
    assert layout("raw", contracts.ENTITIES["Debt"]).index("risk_score") < layout("raw", contracts.ENTITIES["Debt"]).index("_op")
    assert new_batches(lake, "Debt", snapshot)[0] == []  # a backfill adds no batch to load
    assert promote(lake, "Debt", workdir=str(tmp_path)) == {"raw": 0, "protected": 0}  # nothing left to fill

    later = write_export(tmp_path / "later", [line(debt(4, riskScore={"N": "640"}))])
    summary = (tmp_path / "later" / SUMMARY)
    doc = orjson.loads(summary.read_bytes())
    summary.write_bytes(orjson.dumps({**doc, "exportArn": doc["exportArn"].replace("0badf00d", "0badf00e")}))
    ingest_export(later, SUMMARY, lake, tenant_id="agency-001", entity="Debt", tenant=registry.tenant("agency-001"),
                  run_id="after", key_for=lambda t: KEY)
    scores = {r["id"]: r["risk_score"] for r in read(lake, "raw", "Debt").to_pylist()}
    assert scores == {"d-1": 712, "d-2": None, "d-3": None, "d-4": 640}  # files before and after, read together


def test_after_a_promotion_every_protected_file_has_the_whole_layout_even_of_a_tenant_that_never_drifted(
        tmp_path, registry, promoted_contract):
    """Redshift's COPY maps Parquet columns by position and needs as many as the stage table: a
    file of a tenant that never sent riskScore was left with the old 24 columns (independent probe:
    _op's text would have gone into risk_score on a reload)."""
    from tenantlake.cli import local_lake

    lake = local_lake(tmp_path / "lake")
    store = write_export(tmp_path / "landing", [line(debt(1)) + line(debt(2))])  # no riskScore anywhere
    ingest_export(store, SUMMARY, lake, tenant_id="agency-001", entity="Debt", tenant=registry.tenant("agency-001"),
                  run_id="before", key_for=lambda t: KEY)
    promoted_contract()
    assert promote(lake, "Debt", workdir=str(tmp_path))["protected"] == 1
    (f,) = [t.file.file_path for t in lake.load("protected", "Debt").scan().plan_files()]
    assert pq.read_schema(f.removeprefix("file://")).names == layout("protected", contracts.ENTITIES["Debt"])
    assert {r["id"]: r["risk_score"] for r in read(lake, "protected", "Debt").to_pylist()} == {"d-1": None, "d-2": None}
    assert promote(lake, "Debt", workdir=str(tmp_path)) == {"raw": 0, "protected": 0}


def test_a_field_declared_inside_a_map_is_filled_for_old_rows_from_extra(tmp_path, registry, monkeypatch):
    """Declared inside bureau (a struct column), a drifted field was filled for new rows only: older
    rows kept it in raw `_extra`, where no analyst sees it (independent probe; issue 13 item 2)."""
    from decimal import Decimal

    import pyarrow as pa

    from tenantlake.cli import local_lake

    lake = local_lake(tmp_path / "lake")
    bureau = debt(1)["bureau"]
    scored = {"M": {**bureau["M"], "score": {"N": "5.5"}}}
    store = write_export(tmp_path / "landing", [line(debt(1, bureau=scored)) + line(debt(2))])
    ingest_export(store, SUMMARY, lake, tenant_id="agency-001", entity="Debt", tenant=registry.tenant("agency-001"),
                  run_id="before", key_for=lambda t: KEY)
    assert orjson.loads(read(lake, "raw", "Debt").to_pylist()[0]["_extra"]) == {"bureau": {"M": {"score": {"N": "5.5"}}}}

    shape = contracts.SHAPES["bureau"]
    monkeypatch.setitem(contracts.SHAPES, "bureau", pa.struct([*shape, ("score", pa.decimal128(7, 2))]))
    assert promote(lake, "Debt", workdir=str(tmp_path)) == {"raw": 1, "protected": 1}
    raw = {r["id"]: r for r in read(lake, "raw", "Debt").to_pylist()}
    assert raw["d-1"]["bureau"]["score"] == Decimal("5.50") and raw["d-1"]["_extra"] is None
    assert raw["d-1"]["bureau"]["name"] == "TRANSUNION" and raw["d-1"]["bureau"]["tradeline"]["highCredit"] == 2000
    assert raw["d-2"]["bureau"]["score"] is None
    protected = {r["id"]: r for r in read(lake, "protected", "Debt").to_pylist()}
    assert protected["d-1"]["bureau"]["score"] == Decimal("5.50") and protected["d-2"]["bureau"]["score"] is None
    assert promote(lake, "Debt", workdir=str(tmp_path)) == {"raw": 0, "protected": 0}  # nothing left to fill
