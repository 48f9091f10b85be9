"""audit_many: many batches in one call, each judged alone; which engine audits what; the enum
policy against the contracts; and no personal data in any stored result or Data Docs page.
Expected values are written out by hand from the suites (expectations/*.json)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from tenantlake import contracts, quality
from tenantlake.contracts import ENTITIES
from tenantlake.formats.rows import lake_schema

EXPORT = datetime(2026, 3, 1, tzinfo=UTC)
LIMIT = EXPORT + timedelta(days=1)  # $max_time: the export time and a day of clock drift
US = timedelta(microseconds=1)


def table(entity: str, rows: list[dict], tenant: str = "t-1") -> pa.Table:
    schema = pa.schema([f.with_nullable(True) for f in lake_schema(ENTITIES[entity])])
    base = {"tenant_id": tenant, "_op": "insert", "created_at": EXPORT, "updated_at": EXPORT}
    return pa.Table.from_pylist([{**base, **r} for r in rows], schema=schema)


def batch(key, entity: str, rows: list[dict], tenant: str = "t-1", kind: str = "FULL_EXPORT",
          expected: int | None = None, export: datetime = EXPORT) -> quality.AuditBatch:
    t = table(entity, rows, tenant)
    return quality.AuditBatch(key, tenant, kind, t, quality.params_for(
        tenant, t.num_rows if expected is None else expected, int(export.timestamp() * 1_000_000)))


def nothing_published(tenant_id, entity):
    return set()


def copy_suites(tmp_path: Path, entity: str, edit) -> str:
    folder = tmp_path / "suites"
    folder.mkdir(exist_ok=True)
    doc = json.loads((Path(quality.suites_folder()) / f"{entity}.json").read_text())
    edit(doc)
    (folder / f"{entity}.json").write_text(json.dumps(doc))
    return str(folder)


def test_each_batch_is_judged_by_its_own_rows_and_parameters():
    debt = {"consumer_id": "c-1", "account_type": "CREDIT_CARD", "source": "TRANSUNION", "creditor_name": "Chase"}
    batches = [
        batch("clean", "Debt", [{**debt, "id": "a"}, {**debt, "id": "b", "apr": Decimal("150")}]),
        batch("dup", "Debt", [{**debt, "id": "a"}, {**debt, "id": "a"}], tenant="t-2"),
        batch("stream", "Debt", [{**debt, "id": "a"}, {**debt, "id": "a"}], kind="STREAM_PIPES"),
        batch("tenant", "Debt", [{**debt, "id": "c"}, {**debt, "id": "d", "tenant_id": "t-1"}], tenant="t-2",
              kind="INCREMENTAL_EXPORT"),
        batch("count", "Debt", [{**debt, "id": "e"}, {**debt, "id": "f"}], expected=3),
        batch("empty", "Debt", []),
    ]
    got = quality.audit_many("Debt", batches, nothing_published)
    assert list(got) == [b.key for b in batches]  # one audit per batch, in the caller's order
    # "a" is in three batches: only the batch holding it twice fails, and only an export (a
    # stream file may carry several changes of one key).
    assert got["clean"].failed == [] and got["stream"].failed == []
    assert got["dup"].failed == ["expect_column_values_to_be_unique(id): 2"]
    # $tenant_id is each batch's own: t-1 rows pass in t-1's batches and fail t-2's.
    assert got["tenant"].failed == ["expect_column_values_to_be_in_set(tenant_id): 1"]
    assert got["count"].failed == ["expect_table_row_count_to_equal: 2"]
    # Row positions are within the batch, however many rows came before it in the call.
    assert got["clean"].quarantined_rows == {1: "expect_column_values_to_be_between(apr)"}
    assert got["empty"].failed == [] and got["empty"].quarantined_rows == {} and got["empty"].result["success"]
    assert {a.result["meta"]["audited_by"] for a in got.values()} == {"tenantlake.quality.fast"}


def test_the_future_limit_is_each_batchs_own_and_removes_are_not_held_to_it():
    consumer = {"status": "LEAD", "consumer_id": "c"}
    stamps = [LIMIT - US, LIMIT, LIMIT + US]
    rows = [{**consumer, "id": f"c-{i}", "created_at": s} for i, s in enumerate(stamps)]
    rows.append({"id": "c-9", "created_at": LIMIT + timedelta(days=9), "_op": "remove"})
    later = batch("later", "Consumer", rows)
    earlier = batch("earlier", "Consumer", rows, export=EXPORT - timedelta(days=1))
    got = quality.audit_many("Consumer", [later, earlier], nothing_published)
    reason = "expect_column_values_to_be_between(created_at)"
    assert got["later"].quarantined_rows == {2: reason}  # the limit itself is allowed (not strict)
    assert got["earlier"].quarantined_rows == {0: reason, 1: reason, 2: reason}  # a day less of future


def test_a_regex_means_what_pythons_re_means():
    """pandas' str.contains is re.search: `$` also matches before a final newline, and [0-9] is
    not \\d. The expected verdicts come from Python's re, not from the code under test."""
    codes = ["12345", "12345\n", "١٢٣٤٥", "1234"]
    warned = sum(re.search(r"^[0-9]{5}$", c) is None for c in codes)
    assert warned == 2
    rows = [{"id": f"c-{i}", "status": "LEAD", "postal_code": c} for i, c in enumerate(codes)]
    got = quality.audit_many("Consumer", [batch(1, "Consumer", rows)], nothing_published)[1]
    assert f"expect_column_values_to_match_regex(postal_code): {warned}" in got.warned


def test_plans_are_looked_up_once_per_tenant_and_a_failing_lookup_fails_only_its_batch():
    asked = []

    def published(tenant_id, entity):
        asked.append((tenant_id, entity))
        if tenant_id == "t-3":
            raise OSError("the lake is unreachable")
        return {"p-1"}

    pay = {"consumer_id": "c-1", "status": "SETTLED"}
    batches = [batch(1, "Payment", [{**pay, "id": "x", "plan_id": "p-1"}, {**pay, "id": "y", "plan_id": "p-2"}]),
               batch(2, "Payment", [{**pay, "id": "z", "plan_id": "p-9"}]),
               batch(3, "Payment", [{**pay, "id": "w", "plan_id": "p-1"}], tenant="t-3"),
               batch(4, "Payment", [{**pay, "id": "v", "plan_id": "p-7", "_op": "remove"}], tenant="t-4"),
               batch(5, "Payment", [], tenant="t-5")]
    got = quality.audit_many("Payment", batches, published)
    assert sorted(asked) == [("t-1", "Plan"), ("t-3", "Plan")]  # nothing to look up for t-4 and t-5
    ref = "expect_column_values_to_reference_published(plan_id)"
    assert f"{ref}: 1" in got[1].warned and f"{ref}: 1" in got[2].warned
    assert got[3].error and "OSError" in got[3].error and got[3].failed  # fail closed...
    assert "the lake is unreachable" not in got[3].error  # (the error names no data, only its kind)
    assert not got[4].failed and not got[5].failed  # ...and only that batch


def test_what_the_evaluator_does_not_know_goes_to_gx(tmp_path):
    folder = copy_suites(tmp_path, "Debt", lambda d: d["expectations"].append(
        {"type": "expect_column_values_to_not_be_in_set", "kwargs": {"column": "creditor_name", "value_set": ["AMEX"]},
         "meta": {"severity": "quarantine"}}))
    rows = [{"id": "a", "consumer_id": "c", "creditor_name": "Chase"},
            {"id": "b", "consumer_id": "c", "creditor_name": "AMEX"}]
    got = quality.audit_many("Debt", [batch(1, "Debt", rows)], nothing_published, folder=folder)[1]
    assert got.result["meta"]["audited_by"] == "great_expectations"
    assert got.quarantined_rows == {1: "expect_column_values_to_not_be_in_set(creditor_name)"}


def test_mostly_is_evaluated_here_as_gx_defines_it(tmp_path):
    def half(doc):
        for e in doc["expectations"]:
            if e["kwargs"].get("column") == "account_type":
                e["kwargs"]["mostly"] = 0.5
    folder = copy_suites(tmp_path, "Debt", half)
    base = {"consumer_id": "c", "creditor_name": "x"}
    two_of_three = [{**base, "id": "a", "account_type": "MEDICAL"}, {**base, "id": "b", "account_type": "LEASE"},
                    {**base, "id": "c", "account_type": "AUTO_LOAN"}]
    one_of_three = [{**r, "account_type": "LEASE"} if r["id"] != "a" else r for r in two_of_three]
    got = quality.audit_many("Debt", [batch(1, "Debt", two_of_three), batch(2, "Debt", one_of_three)],
                             nothing_published, folder=folder)
    assert got[1].result["meta"]["audited_by"] == "tenantlake.quality.fast"
    check = "expect_column_values_to_be_in_set(account_type)"
    assert not any(w.startswith(check) for w in got[1].warned)  # 2/3 expected >= 0.5: a pass
    assert f"{check}: 2" in got[2].warned  # 1/3 < 0.5


@pytest.mark.parametrize(("bounds", "what_gx_does"), [
    ({"max_value": "2026-02-30"}, "refuses the suite"), ({"max_value": "soon"}, "refuses the suite"),
    ({"min_value": "2026-01-01T00:00:00", "max_value": "2026-03-01T00:00:00Z"}, "raises on the batch")])
def test_a_bound_that_is_not_plainly_a_date_or_time_is_left_to_gx(tmp_path, bounds, what_gx_does):
    """No guessing: GX's own model decides, and either way nothing passes."""
    from tenantlake.quality import fast

    exp = {"type": "expect_column_values_to_be_between", "kwargs": {"column": "created_at", **bounds},
           "meta": {"severity": "warn"}}
    assert fast.unsupported_config(exp)
    folder = copy_suites(tmp_path, "Debt", lambda d: d["expectations"].append(exp))
    one = [batch(1, "Debt", [{"id": "a", "consumer_id": "c", "creditor_name": "x"}])]
    if what_gx_does == "refuses the suite":
        with pytest.raises(quality.SuiteError, match="Debt.json"):
            quality.audit_many("Debt", one, nothing_published, folder=folder)
    else:  # naive against aware: GX accepts the suite and raises comparing
        got = quality.audit_many("Debt", one, nothing_published, folder=folder)[1]
        assert got.error and "raised inside GX" in got.error and got.failed


def test_large_batches_go_to_gx_and_small_ones_do_not():
    rows = [{"id": f"d-{i}", "consumer_id": "c", "creditor_name": "x"} for i in range(3)]
    got = quality.audit_many("Debt", [batch("big", "Debt", rows), batch("small", "Debt", rows[:2])],
                             nothing_published, fast_max_rows=2)
    assert got["big"].result["meta"]["audited_by"] == "great_expectations"
    assert got["small"].result["meta"]["audited_by"] == "tenantlake.quality.fast"


def test_a_fault_in_the_evaluator_sends_its_batches_to_gx(monkeypatch):
    from tenantlake.quality import fast

    def broken(batches, published):
        raise IndexError("a bug")

    monkeypatch.setattr(fast, "evaluate", broken)
    rows = [{"id": "a", "consumer_id": "c", "creditor_name": "x", "apr": Decimal("150")}]
    got = quality.audit_many("Debt", [batch(1, "Debt", rows), batch(2, "Debt", rows, tenant="t-2")],
                             nothing_published)
    assert {a.result["meta"]["audited_by"] for a in got.values()} == {"great_expectations"}
    assert got[1].quarantined_rows == got[2].quarantined_rows == {0: "expect_column_values_to_be_between(apr)"}


def test_small_batches_never_import_gx():
    script = """
import sys
from tests.tenantlake.test_quality_many import batch, nothing_published
from tenantlake import quality
from tenantlake.contracts import ENTITIES
for e in ENTITIES:
    audits = quality.audit_many(e, [batch(1, e, [{"id": "a"}]), batch(2, e, [])], nothing_published)
    assert audits[1].result["meta"]["audited_by"] == "tenantlake.quality.fast", e
print("great_expectations" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"


def test_a_broken_suite_is_an_error_for_the_caller(tmp_path):
    folder = copy_suites(tmp_path, "Debt", lambda d: d["expectations"][0]["meta"].pop("severity"))
    with pytest.raises(quality.SuiteError, match="Debt.json"):
        quality.audit_many("Debt", [batch(1, "Debt", [])], nothing_published, folder=folder)
    with pytest.raises(ValueError, match="unique"):
        quality.audit_many("Debt", [batch(1, "Debt", []), batch(1, "Debt", [])], nothing_published)


# The enum policy (issue 13): open enums warn, closed ones quarantine, as the contract says.

@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_every_suites_enum_checks_agree_with_the_contract(entity):
    assert quality.contract_mismatches(entity) == []


def test_the_enum_agreement_check_can_fail(monkeypatch):
    debt = ENTITIES["Debt"]
    closed = tuple(dataclasses.replace(a, closed=True) if a.column == "account_type" else a for a in debt.attributes)
    monkeypatch.setitem(contracts.ENTITIES, "Debt", dataclasses.replace(debt, attributes=closed))
    assert quality.contract_mismatches("Debt") == [
        "Debt.account_type: severity 'warn', but the attribute is closed ('quarantine')"]
    grown = tuple(dataclasses.replace(a, values=(*a.values, "LEASE")) if a.column == "source" else a
                  for a in debt.attributes)
    monkeypatch.setitem(contracts.ENTITIES, "Debt", dataclasses.replace(debt, attributes=grown))
    assert [m.split(":")[0] for m in quality.contract_mismatches("Debt")] == ["Debt.source"]


def test_an_unknown_status_is_published_as_sent_and_warned_unless_the_attribute_is_closed(tmp_path):
    rows = [{"id": "c-1", "status": "LEAD"}, {"id": "c-2", "status": "ARCHIVED"}]
    got = quality.audit_many("Consumer", [batch(1, "Consumer", rows)], nothing_published)[1]
    assert got.quarantined_rows == {} and not got.failed  # the row stays in the batch, as sent
    assert "expect_column_values_to_be_in_set(status): 1" in got.warned

    def close_status(doc):  # what the contract test demands of a closed attribute
        next(e for e in doc["expectations"] if e["kwargs"].get("column") == "status")["meta"]["severity"] = "quarantine"
    folder = copy_suites(tmp_path, "Consumer", close_status)
    got = quality.audit_many("Consumer", [batch(1, "Consumer", rows)], nothing_published, folder=folder)[1]
    assert got.quarantined_rows == {1: "expect_column_values_to_be_in_set(status)"}


# No personal data in results (issue 15).

PII = {"id": "c-PII-4471", "first_name": "Zebulonius", "last_name": "Quartermaine", "email": "zeb@pii.example",
       "phone": "+1-555-0142", "ssn_last4": "9876", "date_of_birth": date(1850, 2, 3), "postal_code": "PII9X9X9"}


def _pii_values() -> list[str]:
    return [v.isoformat() if isinstance(v, date) else v for v in PII.values()] + ["c-PII-REF-88"]


@pytest.mark.parametrize("engine", ["fast", "gx"])
def test_stored_results_and_data_docs_hold_no_personal_value(tmp_path, engine):
    """Every check on a personal column fails on a fixture value (and the id is repeated, the
    birth date out of range, the ZIP malformed, an Application's consumer id names the person):
    the stored documents and the Data Docs built from them hold none of those values."""
    future = date(2999, 1, 1)
    consumers = [{**PII, "status": "LEAD", "state": "zz"}, {**PII, "date_of_birth": future, "status": "ARCHIVED"}]
    apps = [{"id": "app-1", "consumer_id": "c-PII-REF-88", "status": "SUBMITTED", "submitted_at": LIMIT + US,
             "decided_at": EXPORT - timedelta(days=5)},
            {"id": "app-1", "consumer_id": "c-PII-REF-88", "status": "SUBMITTED"}]
    docs = []
    for entity, rows in (("Consumer", consumers), ("Application", apps)):
        got = quality.audit_many(entity, [batch("b", entity, rows)], nothing_published, engine=engine)["b"]
        assert got.failed and got.result["meta"]["audited_by"] == {"fast": "tenantlake.quality.fast",
                                                                     "gx": "great_expectations"}[engine]
        docs.append(quality.document(got, tenant_id="t-1", entity=entity, export_id=f"e-{entity}", run_id="r"))
    stored = json.dumps(docs)
    index = quality.build_data_docs(docs, tmp_path / "docs")
    site = "".join(p.read_text(errors="ignore") for p in (tmp_path / "docs").rglob("*")
                   if p.is_file() and p.suffix in (".html", ".json"))
    assert "zz" in stored and "zz" in site  # a non-personal unexpected value is shown: the scan can see
    assert "expect_column_values_to_match_regex" in site and Path(index).is_file()
    assert '"_row": 1' in stored  # the rows are still named, by position
    found = [v for v in [*_pii_values(), future.isoformat()] if v in stored or v in site]
    assert found == []


def test_an_error_quoting_a_personal_value_is_stored_without_its_text(monkeypatch):
    """pandas and GX errors may quote the value they choked on. Whether GX raises outright or
    reports an expectation's exception, for a personal column only the error's kind is kept."""
    from tenantlake.quality import gx

    def raises(*args):
        raise ValueError(f"cannot compare {PII['postal_code']!r}")

    rows = [{**PII, "status": "LEAD"}]
    monkeypatch.setattr(gx, "validate", raises)
    got = quality.audit_many("Consumer", [batch(1, "Consumer", rows)], nothing_published, engine="gx")[1]
    assert got.error and "ValueError" in got.error and PII["postal_code"] not in got.error

    def reports(entity, exps, table, columns, published):
        exp = next(e for _, e in exps if e["kwargs"].get("column") == "postal_code")
        return {"success": False, "statistics": {}, "meta": {}, "results": [{
            "success": False, "expectation_config": exp, "result": {},
            "exception_info": {"raised_exception": True, "exception_message": f"bad {PII['postal_code']}",
                               "exception_traceback": f"Traceback: ... {PII['postal_code']}"}}]}

    monkeypatch.setattr(gx, "validate", reports)
    got = quality.audit_many("Consumer", [batch(1, "Consumer", rows)], nothing_published, engine="gx")[1]
    assert got.error and "raised inside GX" in got.error
    assert PII["postal_code"] not in json.dumps(got.result) + got.error + "".join(got.failed)


def test_every_shipped_suite_is_accepted_by_gx():
    from tenantlake.quality.gx import gx_suite
    from tenantlake.quality.suites import SAMPLE_PARAMS, resolve

    for entity in ENTITIES:
        doc = quality.load_suite(entity, quality.suites_folder())
        exps = [{**e, "kwargs": resolve(e["kwargs"], SAMPLE_PARAMS)} for e in doc["expectations"]]
        assert len(gx_suite(entity, exps, entity).expectations) == len(exps)


def test_a_retired_attribute_with_a_refusing_not_null_check_is_a_mismatch(monkeypatch):
    """Retiring consumerId in the contract and keeping the suite's not-null check (severity
    quarantine) would quarantine every row of the app version that stopped sending it."""
    debt = ENTITIES["Debt"]
    retired = tuple(dataclasses.replace(a, retired=True) if a.column == "consumer_id" else a for a in debt.attributes)
    monkeypatch.setitem(contracts.ENTITIES, "Debt", dataclasses.replace(debt, attributes=retired))
    assert quality.contract_mismatches("Debt") == [
        "Debt.consumer_id: a not-null check (quarantine) on a retired attribute: drop it from the suite, or make it warn"]
