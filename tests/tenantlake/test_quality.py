"""The quality gate: every severity path on simulator data with injected defects, suites as data,
failing closed, and Data Docs without PII."""

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tenantlake import quality
from tenantlake.ingest import ingest_export
from tenantlake.lake import commits, read_committed
from tenantlake.quality import QualityError, SuiteError
from tenantlake.storage import LocalStore
from tenantlake_dev.simulate import FleetSpec, simulate_fleet
from tests.tenantlake.formats.kit import SUMMARY, debt, line, write_export


@pytest.fixture(scope="module")
def defective(tmp_path_factory, registry):
    """One agency whose full exports carry known defects, ingested with the gate on."""
    out = tmp_path_factory.mktemp("defective")
    simulate_fleet(registry.tenants[:1], FleetSpec(consumers=150, days=1, warmup_days=30, seed=5, defects=2),
                   out, workers=1)
    landing, lake = LocalStore(out / "landing"), LocalStore(out / "lake")
    full = {}
    for key in landing.list("tenant=agency-001/"):
        if key.endswith("manifest-summary.json") and json.loads(landing.get(key))["exportType"] == "FULL_EXPORT":
            entity = key.split("/")[1].removeprefix("table=")
            full[entity] = ingest_export(landing, key, lake, tenant_id="agency-001", entity=entity,
                                         tenant=registry.tenant("agency-001"), run_id="q")
    defects = [json.loads(x) for x in (out / "truth/defects.jsonl").read_text().splitlines()]
    return out, lake, full, defects


def quarantine_rows(lake, entity):
    path = lake.path(f"quarantine/{entity}/tenant_id=agency-001")
    return [r for f in path.rglob("*.parquet") for r in pq.read_table(f).to_pylist()] if path.exists() else []


def test_each_defect_went_exactly_where_its_severity_says(defective):
    _, lake, full, defects = defective
    assert {d["outcome"] for d in defects} == {"quarantine", "warn"} and len(defects) == 14  # (3 Debt + 2 Consumer + 1 Expense + 1 Payment kinds) x 2
    for entity in ("Debt", "Consumer", "Expense", "Payment"):
        raw_ids = {r["id"] for r in read_committed(lake, entity, "agency-001").to_pylist()}
        aside = quarantine_rows(lake, entity)
        mine = [d for d in defects if d["entity"] == entity]
        expected_aside = {d["id"]: d["reason"] for d in mine if d["outcome"] == "quarantine"}
        got_aside = {json.loads(q["_raw"])["id"] if q["_raw"].startswith(b'{"tenant_id"')
                     else json.loads(q["_raw"])["Item"]["id"]["S"]: q["_reason"] for q in aside}
        assert got_aside == expected_aside, entity  # exactly these rows, for exactly these reasons
        assert not raw_ids & set(expected_aside), entity  # and none of them reached raw/
        for d in mine:
            if d["outcome"] == "warn":
                assert d["id"] in raw_ids
        r = full[entity]
        assert r.rows + r.quarantined == r.items  # nothing else moved
    eid = commits(lake, "Debt", "agency-001")[0].export_id
    warned = json.loads(lake.get(f"_quality/results/Debt/tenant_id=agency-001/{eid}.json"))["warned"]
    assert any(w.startswith("expect_column_values_to_be_between(delinquency_days): 2") for w in warned)


def test_a_fail_expectation_stops_the_batch(tmp_path, registry):
    text = line(debt(1)) + line(debt(2)) + line(debt(1, balance={"N": "3.00"}))  # id d-1 twice
    store = write_export(tmp_path / "landing", [text])
    lake = LocalStore(tmp_path / "lake")
    with pytest.raises(QualityError, match=r"failed its audit: expect_column_values_to_be_unique\(id\): 2"):
        ingest_export(store, SUMMARY, lake, tenant_id="agency-001", entity="Debt",
                      tenant=registry.tenant("agency-001"), run_id="q")
    assert not lake.path("raw").exists()  # not published
    assert not list(lake.root.rglob("*.parquet"))  # staging cleaned
    result = json.loads(next(lake.path("_quality").rglob("*.json")).read_text())
    assert result["failed"] and not result["result"]["success"]  # but the evidence is kept


def _suite_folder(tmp_path, edit):
    folder = tmp_path / "suites"
    shutil.copytree(quality.suites_folder(), folder)
    doc = json.loads((folder / "Debt.json").read_text())
    edit(doc)
    (folder / "Debt.json").write_text(json.dumps(doc))
    return folder


def test_adding_an_expectation_is_data_not_code(tmp_path, registry, monkeypatch):
    folder = _suite_folder(tmp_path, lambda d: d["expectations"].append(
        {"type": "expect_column_values_to_not_be_in_set", "kwargs": {"column": "creditor_name", "value_set": ["AMEX"]},
         "meta": {"severity": "quarantine"}}))
    monkeypatch.setenv("TENANTLAKE_EXPECTATIONS", str(folder))
    store = write_export(tmp_path / "landing", [line(debt(1)) + line(debt(2, creditorName={"S": "AMEX"}))])
    lake = LocalStore(tmp_path / "lake")
    r = ingest_export(store, SUMMARY, lake, tenant_id="agency-001", entity="Debt",
                      tenant=registry.tenant("agency-001"), run_id="q")
    assert (r.rows, r.quarantined) == (1, 1)
    assert quarantine_rows(lake, "Debt")[0]["_reason"] == "expect_column_values_to_not_be_in_set(creditor_name)"


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["expectations"][0]["meta"].pop("severity"), r"expectations\[0\] \(expect_column_values_to_not_be_null\)"
                                                              r": meta.severity must be one of fail, quarantine, warn"),
    (lambda d: d["expectations"].append({"type": "expect_the_moon", "kwargs": {}, "meta": {"severity": "warn"}}),
     r"Debt.json: .*expect_the_moon"),
    (lambda d: d.pop("expectations"), r"Debt.json: a suite is"),
])
def test_malformed_suite_names_the_file(tmp_path, edit, message):
    folder = _suite_folder(tmp_path, edit)
    with pytest.raises(SuiteError, match=message):
        quality.load_suite("Debt", str(folder))


def test_suite_that_is_not_json_names_the_file(tmp_path):
    (tmp_path / "Debt.json").write_text("{oops")
    with pytest.raises(SuiteError, match=r"Debt.json: not valid JSON"):
        quality.load_suite("Debt", str(tmp_path))


def test_an_exception_inside_gx_fails_closed(tmp_path, registry, monkeypatch):
    folder = _suite_folder(tmp_path, lambda d: d["expectations"].append(
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "no_such_column", "min_value": 0},
         "meta": {"severity": "warn"}}))
    monkeypatch.setenv("TENANTLAKE_EXPECTATIONS", str(folder))
    store = write_export(tmp_path / "landing", [line(debt(1))])
    lake = LocalStore(tmp_path / "lake")
    with pytest.raises(QualityError, match="raised inside GX"):
        ingest_export(store, SUMMARY, lake, tenant_id="agency-001", entity="Debt",
                      tenant=registry.tenant("agency-001"), run_id="q")
    assert not lake.path("raw").exists()


def test_data_docs_show_failures_but_never_pii(tmp_path, registry):
    from tests.tenantlake.formats.kit import BASE  # noqa: F401 - the same layout, a Consumer table
    consumer = {"id": {"S": "c-1"}, "status": {"S": "LEAD"}, "firstName": {"S": "Zebulonius"},
                "postalCode": {"S": "PII9X9X9"}, "state": {"S": "zz"}, "createdAt": {"S": "2026-10-01T00:00:00Z"}}
    arn = "arn:aws:dynamodb:us-east-1:211111111111:table/Consumer-k3j2h5-prod"
    store = write_export(tmp_path / "landing", [line(consumer)], table_arn=arn)
    lake = LocalStore(tmp_path / "lake")
    r = ingest_export(store, SUMMARY, lake, tenant_id="agency-001", entity="Consumer",
                      tenant=registry.tenant("agency-001"), run_id="q")
    assert r.rows == 1  # warnings only
    index = quality.build_data_docs(lake, tmp_path / "docs")
    site = tmp_path / "docs"
    text = "".join(p.read_text(errors="ignore") for p in site.rglob("*") if p.is_file() and p.suffix in (".html", ".json"))
    stored = "".join(lake.path(k).read_text() for k in lake.list("_quality/"))
    assert index.endswith("index.html") and "Consumer" in text
    ours = Path(index).read_text()  # plain HTML, readable offline: no script, nothing fetched
    assert "<script" not in ours and "http" not in ours
    assert "<td>agency-001</td><td>Consumer</td>" in ours and "expect_column_values_to_match_regex(state): 1" in ours
    page = ours.split('<a href="')[1].split('"')[0]
    assert (Path(index).parent / page).is_file()
    assert "zz" in stored  # an unexpected non-PII value is shown...
    for secret in ("PII9X9X9", "Zebulonius"):  # ...but no PII value, in the docs or the stored results
        assert secret not in text and secret not in stored


def test_results_are_summarised_per_tenant(defective):
    _, lake, full, defects = defective
    summary = quality.summarise(lake)["agency-001"]
    assert set(summary) == set(full)
    audited = {d["entity"]: 0 for d in defects}
    for d in defects:  # rows the audit (not the decoder) set aside
        if d["outcome"] == "quarantine" and d["reason"].startswith("expect_"):
            audited[d["entity"]] += 1
    for entity, n in audited.items():
        assert summary[entity]["quarantined"] == n, entity
    assert summary["Debt"]["warnings"]["expect_column_values_to_be_between(delinquency_days)"] == 2
    assert all(s["failed"] == 0 and s["batches"] == 1 for s in summary.values())


REFERENCE = "expect_column_values_to_reference_published(plan_id)"


def test_payments_are_checked_against_the_plans_already_published(defective, tmp_path, registry):
    out, lake, full, _ = defective
    # The fixture published in name order, Payment before Plan: no plan was known, so every
    # payment published was warned about (the count comes from the ingest, not from the audit).
    first = json.loads(lake.get(f"_quality/results/Payment/tenant_id=agency-001/{full['Payment'].export_id}.json"))
    assert f"{REFERENCE}: {full['Payment'].rows}" in first["warned"]
    kwargs = next(r["expectation_config"]["kwargs"] for r in first["result"]["results"]
                  if r["expectation_config"]["type"] == REFERENCE.split("(")[0])
    assert kwargs["entity"] == "Plan" and "value_set" not in kwargs  # the entity, not its ids
    # Again, now that the plans are published: every payment's plan is known, nothing is warned.
    again = LocalStore(tmp_path / "lake")
    shutil.copytree(out / "lake", again.root)
    summary = next(k for k in LocalStore(out / "landing").list("tenant=agency-001/table=Payment/")
                   if k.endswith(f"{full['Payment'].export_id}/manifest-summary.json"))
    ingest_export(LocalStore(out / "landing"), summary, again, tenant_id="agency-001", entity="Payment",
                  tenant=registry.tenant("agency-001"), run_id="q2")
    second = json.loads(again.get(f"_quality/results/Payment/tenant_id=agency-001/{full['Payment'].export_id}.json"))
    assert not [w for w in second["warned"] if w.startswith(REFERENCE)]
    quality.build_data_docs(again, tmp_path / "docs")  # and Data Docs know our expectation
    page = next((tmp_path / "docs").rglob(f"validations/Payment/q2/*/*{full['Payment'].export_id}.html")).read_text()
    assert "'entity': 'Plan'" in page


def test_a_payment_whose_plan_is_unknown_is_named_by_row(tmp_path):
    """The metric on its own: rows 1 and 3 name plans that were never published; a null is not
    this check's business (not_null is)."""
    import pandas as pd

    from tenantlake.references import published_lookup

    ctx, batch = quality._context()
    suite = quality._gx_suite("Payment", [{"type": "expect_column_values_to_reference_published",
                                           "kwargs": {"column": "plan_id", "entity": "Plan"}, "meta": {}}], "t")
    df = pd.DataFrame({"plan_id": ["p-1", "p-9", None, "p-8", "p-2"], "_row": range(5)})
    asked = []
    with published_lookup(lambda e: asked.append(e) or {"p-1", "p-2"}):
        res = batch.get_batch(batch_parameters={"dataframe": df}).validate(
            suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["_row"]})
    r = res.to_json_dict()["results"][0]
    assert not r["success"] and asked == ["Plan"]
    assert sorted(i["_row"] for i in r["result"]["unexpected_index_list"]) == [1, 3]
    # Outside an audit there is nothing to look in: GX records the error (which the audit turns
    # into a failed batch), it never passes.
    r = batch.get_batch(batch_parameters={"dataframe": df}).validate(suite).to_json_dict()["results"][0]
    assert not r["success"] and "no published-id lookup" in quality._raised(r["exception_info"])


def test_building_each_configuration_once_changes_no_result(defective, tmp_path, registry, monkeypatch):
    """The audit builds each GX expectation's configuration once per validation (a speed-up that
    reaches into GX): on batches with failures, quarantines and warnings, every result is the same
    as GX's own way."""
    import contextlib

    out, _, full, _ = defective
    landing = LocalStore(out / "landing")

    def results(lake_dir):
        lake = LocalStore(lake_dir)
        for entity in ("Debt", "Consumer", "Payment"):
            key = next(k for k in landing.list(f"tenant=agency-001/table={entity}/")
                       if k.endswith(f"{full[entity].export_id}/manifest-summary.json"))
            ingest_export(landing, key, lake, tenant_id="agency-001", entity=entity,
                          tenant=registry.tenant("agency-001"), run_id="same")
        docs = {}
        for k in lake.list("_quality/results/"):
            doc = json.loads(lake.get(k))
            docs[k] = (doc["failed"], doc["warned"], doc["quarantined"], doc["result"]["success"],
                       doc["result"]["statistics"], doc["result"]["results"])
        return docs

    from great_expectations.expectations.expectation import Expectation

    gx_own = Expectation.__dict__["configuration"]
    ours = results(tmp_path / "ours")
    assert Expectation.__dict__["configuration"] is gx_own  # GX is given back its own afterwards
    monkeypatch.setattr(quality, "_each_configuration_built_once", contextlib.nullcontext)
    theirs = results(tmp_path / "gx")
    assert len(ours) == 3 and ours == theirs
    assert any(doc[1] for doc in ours.values()) and any(doc[2] for doc in ours.values())  # not a trivial pass
