"""The quality gate inside ingest: every severity path on simulator data with injected defects,
suites as data, failing closed, results in the batch log, and Data Docs without PII.
(audit_many on its own: test_quality_many.py; the vectorised evaluator against GX:
test_quality_fast.py.)"""

import json
import shutil
from pathlib import Path

import pytest

from tenantlake import quality
from tenantlake.contracts import ENTITIES
from tenantlake.ingest import ingest_export
from tenantlake.lake import Lake, LakeConfig, open_catalog
from tenantlake.lake.read import read
from tenantlake.quality import SuiteError
from tenantlake.storage import LocalStore
from tenantlake_dev.simulate import FleetSpec, simulate_fleet
from tests.tenantlake.formats.kit import SUMMARY, debt, line, write_export

TENANT = "agency-001"


def key_for(tenant_id: str) -> bytes:
    return b"k" * 32  # pseudonym key: the audit does not depend on it


def new_lake(root: Path) -> Lake:
    catalog = open_catalog("sql", uri=f"sqlite:///{root}/catalog.db", warehouse=str(root / "lake"))
    return Lake(catalog, LakeConfig(str(root / "lake")))


def ingest(landing, key, lake, entity, registry, run_id="q"):
    return ingest_export(landing, key, lake, tenant_id=TENANT, entity=entity, tenant=registry.tenant(TENANT),
                         run_id=run_id, key_for=key_for)


def documents(lake: Lake, entity: str | None = None) -> list[dict]:
    """Stored result documents, as the batch log keeps them (what Data Docs and summaries read)."""
    log = read(lake, "ops", "batches")
    out = []
    for r in log.to_pylist() if log is not None else []:
        if r["quality"] and (entity is None or r["entity"] == entity):
            doc = json.loads(r["quality"])
            out.append({**doc, "batch": {k: r[k] for k in ("tenant_id", "entity", "export_id", "kind")}})
    return out


def owed(defect: dict) -> str:
    """What the pipeline owes a defect. The simulator records an unknown enum value as a
    quarantine; the contract's drift policy publishes it and warns, unless the attribute is
    closed (tenantlake.contracts), so the contract decides here."""
    for a in ENTITIES[defect["entity"]].attributes:
        if a.values and defect["reason"] == f"expect_column_values_to_be_in_set({a.column})":
            return "quarantine" if a.closed else "warn"
    return defect["outcome"]


def full_exports(landing: LocalStore) -> dict[str, str]:
    out = {}
    for key in landing.list(f"tenant={TENANT}/"):
        if key.endswith("manifest-summary.json") and json.loads(landing.get(key))["exportType"] == "FULL_EXPORT":
            out[key.split("/")[1].removeprefix("table=")] = key
    return out


@pytest.fixture(scope="module")
def defective(tmp_path_factory, registry):
    """One agency whose full exports carry known defects, ingested with the gate on (entities in
    name order, so Payment comes before Plan)."""
    out = tmp_path_factory.mktemp("defective")
    simulate_fleet(registry.tenants[:1], FleetSpec(consumers=150, days=1, warmup_days=30, seed=5, defects=2),
                   out, workers=1)
    landing, lake = LocalStore(out / "landing"), new_lake(out)
    exports = full_exports(landing)
    full = {entity: ingest(landing, key, lake, entity, registry) for entity, key in sorted(exports.items())}
    defects = [json.loads(x) for x in (out / "truth/defects.jsonl").read_text().splitlines()]
    return out, lake, full, defects


def test_each_defect_went_exactly_where_its_severity_says(defective):
    _, lake, full, defects = defective
    assert {d["outcome"] for d in defects} == {"quarantine", "warn"} and len(defects) == 14  # (3 Debt + 2 Consumer + 1 Expense + 1 Payment kinds) x 2
    for entity in ("Debt", "Consumer", "Expense", "Payment"):
        raw_ids = set(read(lake, "raw", entity, TENANT)["id"].to_pylist())
        aside = read(lake, "quarantine", entity, TENANT)
        got_aside = dict(zip(aside["_item_id"].to_pylist(), aside["_reason"].to_pylist(), strict=True)) if aside else {}
        mine = [d for d in defects if d["entity"] == entity]
        expected_aside = {d["id"]: d["reason"] for d in mine if owed(d) == "quarantine"}
        assert got_aside == expected_aside, entity  # exactly these rows, for exactly these reasons
        assert not raw_ids & set(expected_aside), entity  # and none of them reached raw
        assert {d["id"] for d in mine if owed(d) == "warn"} <= raw_ids, entity  # warned rows are published
        r = full[entity]
        assert r.outcome == "published" and r.rows + r.quarantined + r.erased == r.items  # nothing else moved
    warned = documents(lake, "Debt")[0]["warned"]
    assert "expect_column_values_to_be_between(delinquency_days): 2" in warned
    warned = documents(lake, "Consumer")[0]["warned"]
    assert "expect_column_values_to_be_in_set(status): 2" in warned  # ARCHIVED: published as sent, and warned
    archived = [r for r in read(lake, "raw", "Consumer", TENANT).to_pylist() if r["status"] == "ARCHIVED"]
    assert len(archived) == 2  # the marts can count it under its own value


def _suite_folder(tmp_path, edit):
    folder = tmp_path / "suites"
    shutil.copytree(quality.suites_folder(), folder)
    doc = json.loads((folder / "Debt.json").read_text())
    edit(doc)
    (folder / "Debt.json").write_text(json.dumps(doc))
    return folder


def _amex(severity: str):
    return lambda d: d["expectations"].append(
        {"type": "expect_column_values_to_not_be_in_set", "kwargs": {"column": "creditor_name", "value_set": ["AMEX"]},
         "meta": {"severity": severity}})


def test_adding_an_expectation_is_data_not_code(tmp_path, registry, monkeypatch):
    monkeypatch.setenv("TENANTLAKE_EXPECTATIONS", str(_suite_folder(tmp_path, _amex("quarantine"))))
    store = write_export(tmp_path / "landing", [line(debt(1)) + line(debt(2, creditorName={"S": "AMEX"}))])
    lake = new_lake(tmp_path)
    r = ingest(store, SUMMARY, lake, "Debt", registry)
    assert (r.rows, r.quarantined) == (1, 1)
    assert read(lake, "quarantine", "Debt", TENANT)["_reason"].to_pylist() == [
        "expect_column_values_to_not_be_in_set(creditor_name)"]


def test_a_fail_expectation_stops_the_batch_and_keeps_the_evidence(tmp_path, registry, monkeypatch):
    monkeypatch.setenv("TENANTLAKE_EXPECTATIONS", str(_suite_folder(tmp_path, _amex("fail"))))
    store = write_export(tmp_path / "landing", [line(debt(1)) + line(debt(2, creditorName={"S": "AMEX"}))])
    lake = new_lake(tmp_path)
    r = ingest(store, SUMMARY, lake, "Debt", registry)
    assert r.outcome == "failed" and "expect_column_values_to_not_be_in_set(creditor_name): 1" in r.reason
    raw = read(lake, "raw", "Debt")
    assert not r.rows and (raw is None or raw.num_rows == 0)  # not published
    doc = documents(lake, "Debt")[0]
    assert doc["failed"] and not doc["result"]["success"]  # the evidence is kept


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
    monkeypatch.setenv("TENANTLAKE_EXPECTATIONS", str(_suite_folder(tmp_path, lambda d: d["expectations"].append(
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "no_such_column", "min_value": 0},
         "meta": {"severity": "warn"}}))))
    store = write_export(tmp_path / "landing", [line(debt(1))])
    lake = new_lake(tmp_path)
    r = ingest(store, SUMMARY, lake, "Debt", registry)
    assert r.outcome == "failed" and "raised inside GX" in r.reason and not r.rows


def test_data_docs_show_failures_but_never_pii(tmp_path, registry):
    consumer = {"id": {"S": "c-1"}, "status": {"S": "LEAD"}, "firstName": {"S": "Zebulonius"},
                "postalCode": {"S": "PII9X9X9"}, "state": {"S": "zz"}, "createdAt": {"S": "2026-10-01T00:00:00Z"}}
    arn = "arn:aws:dynamodb:us-east-1:211111111111:table/Consumer-k3j2h5-prod"
    store = write_export(tmp_path / "landing", [line(consumer)], table_arn=arn)
    lake = new_lake(tmp_path)
    r = ingest(store, SUMMARY, lake, "Consumer", registry)
    assert r.rows == 1  # warnings only
    docs = documents(lake)
    index = quality.build_data_docs(docs, tmp_path / "docs")
    site = tmp_path / "docs"
    text = "".join(p.read_text(errors="ignore") for p in site.rglob("*") if p.is_file() and p.suffix in (".html", ".json"))
    stored = json.dumps(docs)
    assert index.endswith("index.html") and "Consumer" in text
    ours = Path(index).read_text()  # plain HTML, readable offline: no script, nothing fetched
    assert "<script" not in ours and "http" not in ours
    assert "<td>agency-001</td><td>Consumer</td>" in ours and "expect_column_values_to_match_regex(state): 1" in ours
    page = ours.split('<a href="')[1].split('"')[0]
    assert (Path(index).parent / page).is_file()
    assert "zz" in stored  # an unexpected non-PII value is shown...
    for secret in ("PII9X9X9", "Zebulonius", "c-1"):  # ...but no PII value (the id is a consumer reference)
        assert secret not in text and secret not in stored


def test_results_are_summarised_per_tenant(defective):
    _, lake, full, defects = defective
    summary = quality.summarise(documents(lake))[TENANT]
    assert set(summary) == set(full)
    audited = {d["entity"]: 0 for d in defects}
    for d in defects:  # rows the audit (not the decoder) set aside
        if owed(d) == "quarantine" and d["reason"].startswith("expect_"):
            audited[d["entity"]] += 1
    for entity, n in audited.items():
        assert summary[entity]["quarantined"] == n, entity
    assert summary["Debt"]["warnings"]["expect_column_values_to_be_between(delinquency_days)"] == 2
    assert summary["Consumer"]["warnings"]["expect_column_values_to_be_in_set(status)"] == 2
    assert all(s["failed"] == 0 and s["batches"] == 1 for s in summary.values())


REFERENCE = "expect_column_values_to_reference_published(plan_id)"


def test_payments_are_checked_against_the_plans_already_published(defective, tmp_path, registry):
    out, lake, full, _ = defective
    # The fixture published in name order, Payment before Plan: no plan was known, so every
    # payment published was warned about (the count comes from the ingest, not from the audit).
    first = documents(lake, "Payment")[0]
    assert f"{REFERENCE}: {full['Payment'].rows}" in first["warned"]
    kwargs = next(r["expectation_config"]["kwargs"] for r in first["result"]["results"]
                  if r["expectation_config"]["type"] == REFERENCE.split("(")[0])
    assert kwargs["entity"] == "Plan" and "value_set" not in kwargs  # the entity, not its ids
    # Plans first this time: every payment's plan is known, nothing is warned.
    landing, again = LocalStore(out / "landing"), new_lake(tmp_path)
    exports = full_exports(landing)
    for entity in ("Plan", "Payment"):
        ingest(landing, exports[entity], again, entity, registry, run_id="q2")
    second = documents(again, "Payment")[0]
    assert not [w for w in second["warned"] if w.startswith(REFERENCE)]
    quality.build_data_docs(documents(again), tmp_path / "docs")  # and Data Docs know our expectation
    page = next((tmp_path / "docs").rglob(f"validations/Payment/q2/*/*{full['Payment'].export_id}.html")).read_text()
    assert "'entity': 'Plan'" in page


def test_a_payment_whose_plan_is_unknown_is_named_by_row():
    """The GX metric on its own: rows 1 and 3 name plans that were never published; a null is not
    this check's business (not_null is)."""
    import pandas as pd

    from tenantlake.quality.gx import context, gx_suite
    from tenantlake.quality.results import _raised
    from tenantlake.references import published_lookup

    ctx, batch = context()
    suite = gx_suite("Payment", [{"type": "expect_column_values_to_reference_published",
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
    assert not r["success"] and "no published-id lookup" in _raised(r["exception_info"])


def test_building_each_configuration_once_changes_no_result(monkeypatch):
    """GX's path builds each expectation's configuration once per validation (a speed-up that
    reaches into GX): on batches with failures, quarantines and warnings, every result is the
    same as GX's own way."""
    import contextlib

    from great_expectations.expectations.expectation import Expectation

    from tenantlake.quality import gx
    from tests.tenantlake.test_quality_many import PII, batch, nothing_published

    batches = {"Debt": [batch(1, "Debt", [{"id": "a", "consumer_id": "c", "creditor_name": "", "apr": 150},
                                          {"id": "a", "consumer_id": None, "delinquency_days": 5000}])],
               "Consumer": [batch(1, "Consumer", [{**PII, "status": "LEAD", "state": "zz"}])],
               "Payment": [batch(1, "Payment", [{"id": "p", "plan_id": "p-9", "consumer_id": "c", "status": "X"}])]}

    def results():
        out = {}
        for entity, bs in batches.items():
            a = quality.audit_many(entity, bs, nothing_published, engine="gx")[1]
            out[entity] = (a.failed, a.warned, a.quarantined_rows, a.result["results"], a.result["statistics"])
        return out

    gx_own = Expectation.__dict__["configuration"]
    ours = results()
    assert Expectation.__dict__["configuration"] is gx_own  # GX is given back its own afterwards
    monkeypatch.setattr(gx, "each_configuration_built_once", contextlib.nullcontext)
    assert results() == ours
    assert any(r[0] for r in ours.values()) and any(r[1] for r in ours.values()) and any(r[2] for r in ours.values())
