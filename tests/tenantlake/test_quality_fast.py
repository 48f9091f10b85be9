"""The vectorised evaluator against Great Expectations itself.

Hypothesis writes batches of every entity, many at a time, from value pools built on the suites'
edges (nulls, repeated ids, values outside a set, bounds hit exactly and missed by one unit, the
future limit, removes, pairs with a missing side, text a regex almost matches, empty batches,
plan ids published or not), and sometimes rewrites the suite itself (mostly, strict bounds,
or_equal, the row condition turned round). audit_many with the fast engine takes them all at
once; GX validates each batch alone; the results must be the same JSON, and so the same
quarantined rows, failures and warnings.
"""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tenantlake import quality
from tenantlake.contracts import ENTITIES
from tenantlake.formats.rows import lake_schema

BASE = datetime(2026, 3, 1, tzinfo=UTC)
EXPORT_TIMES = [BASE, BASE + timedelta(days=1)]  # so a row's stamp hits either batch's limit exactly
US = timedelta(microseconds=1)
LIMITS = [t + quality.FUTURE_TOLERANCE for t in EXPORT_TIMES]
STAMPS = [None, BASE - timedelta(days=3650), BASE, *(t + d for t in LIMITS for d in (-US, timedelta(0), US))]
DATES = [None, date(1899, 12, 31), date(1900, 1, 1), date(1985, 6, 1),
         *(t.date() + timedelta(days=d) for t in LIMITS for d in (0, 1))]
MONEY = [None, "-0.01", "0", "0.01", "12.34", "1000000", "1000000.01", "100000000", "100000000.01"]
RATES = [None, "-0.0001", "0", "19.99", "100", "100.0001"]
INTS = [None, -1, 0, 1, 5, 20, 21, 120, 121, 3650, 3651, 2**53 + 1, 2**63 - 1, -2**63]  # past 2**53: floats round
TEXT = {  # per column: what its checks are about, and near misses
    "state": ["NY", "zz", "NY\n", "N", "NYC", "ÀB", ""],
    "postal_code": ["12345", "12345\n", "1234", "123456", "١٢٣٤٥", " 12345"],
    "email": ["a@b", "a b@c", "@", "a@b@c", "x@y\n"],
    "creditor_name": ["", "C", "x" * 200, "x" * 201, "é" * 200, "é" * 201],
    "plan_id": ["p-1", "p-2", "p-9"],
    "id": ["a", "b", "c"],
}
PUBLISHED = {"t-1": {"p-1"}, "t-2": {"p-1", "p-2"}, "t-3": set()}
KINDS = ["FULL_EXPORT", "INCREMENTAL_EXPORT", "STREAM_PIPES", "STREAM_FIREHOSE"]


def _column_pool(attr) -> list:
    if attr.values:
        return [None, "", "UNKNOWN", attr.values[0].lower(), *attr.values]
    if attr.column in TEXT:
        return [None, *TEXT[attr.column]]
    return {"int": INTS, "money": [None if m is None else Decimal(m) for m in MONEY],
            "rate": [None if r is None else Decimal(r) for r in RATES], "timestamp": STAMPS, "date": DATES,
            "bool": [None, True, False]}.get(attr.kind, [None, "x", "y"] if attr.kind == "string" else [None])


@st.composite
def batch(draw, entity: str, key: int):
    contract = ENTITIES[entity]
    schema = pa.schema([f.with_nullable(True) for f in lake_schema(contract)])
    tenant = draw(st.sampled_from(sorted(PUBLISHED)))
    n = draw(st.integers(0, 6))
    pools = {a.column: _column_pool(a) for a in contract.attributes}
    rows = []
    for _ in range(n):
        row = {c: draw(st.sampled_from(pool)) for c, pool in pools.items()}
        row["tenant_id"] = draw(st.sampled_from([tenant, tenant, tenant, "t-other", None]))
        row["_op"] = draw(st.sampled_from(["insert", "modify", "remove", None]))
        rows.append(row)
    table = pa.Table.from_pylist(rows, schema=schema) if rows else schema.empty_table()
    export = draw(st.sampled_from(EXPORT_TIMES))
    expected = n + draw(st.sampled_from([0, 0, 0, 1, -1]))
    params = quality.params_for(tenant, expected, int(export.timestamp() * 1_000_000))
    return quality.AuditBatch(key, tenant, draw(st.sampled_from(KINDS)), table, params)


@st.composite
def suite_variant(draw, entity: str) -> dict | None:
    """The shipped suite (None), or one with kwargs the shipped suites do not use yet."""
    if draw(st.booleans()):
        return None
    doc = quality.load_suite(entity, quality.suites_folder())
    exps = []
    for e in doc["expectations"]:
        kw = dict(e["kwargs"])
        if e["type"] != "expect_table_row_count_to_equal" and draw(st.booleans()):
            kw["mostly"] = draw(st.sampled_from([0, 0.5, 0.75, 1]))
        if "min_value" in kw or "max_value" in kw:
            kw["strict_min"], kw["strict_max"] = draw(st.booleans()), draw(st.booleans())
            if e["type"] == "expect_column_values_to_be_between" and "min_value" not in kw and draw(st.booleans()):
                kw["min_value"] = {"created_at": "2026-03-02T00:00:00+00:00", "submitted_at": "2016-01-01T00:00:00Z"}[
                    kw["column"]]
        if "or_equal" in kw:
            kw["or_equal"] = draw(st.booleans())
        if kw.get("row_condition") and draw(st.booleans()):
            kw["row_condition"] = '_op == "remove"'
        exps.append({**e, "kwargs": kw})
    return {**doc, "expectations": exps}


def entity_batches(entity):
    return st.integers(1, 5).flatmap(lambda k: st.tuples(*(batch(entity, i) for i in range(k))))


def _published(asked: list):
    def lookup(tenant_id, entity):
        asked.append((tenant_id, entity))
        return PUBLISHED[tenant_id] if entity == "Plan" else set()
    return lookup


def _comparable(audit: quality.Audit) -> dict:
    """An audit as both engines must agree on it: the decision and the results, in one order."""
    res = json.loads(json.dumps(audit.result, default=str))
    by_key = sorted(res.get("results", []), key=lambda r: json.dumps(r["expectation_config"], sort_keys=True))
    return {"quarantined": audit.quarantined_rows, "failed": audit.failed, "warned": audit.warned,
            "error": audit.error, "success": res.get("success"), "statistics": res.get("statistics"),
            "results": by_key}


def _both(entity, batches, folder=None):
    """(fast, gx) audits of the same batches, results not redacted (values compared too)."""
    with mock.patch.object(quality, "redact", lambda result, personal: result):
        fast = quality.audit_many(entity, batches, _published([]), engine="fast", folder=folder)
        gx = quality.audit_many(entity, batches, _published([]), engine="gx", folder=folder)
    return fast, gx


# GX takes ~70 ms a batch (far more on a loaded machine), so the default search is modest; set
# TENANTLAKE_DIFFERENTIAL_EXAMPLES for a long one. Shrinking through GX can take many minutes, so
# a failure is reported unshrunk, with its batch and the first differing field.
EXAMPLES = int(os.environ.get("TENANTLAKE_DIFFERENTIAL_EXAMPLES", "12"))


def first_difference(a, b, path="") -> str | None:
    if type(a) is not type(b) or (not isinstance(a, (dict, list)) and a != b):
        return f"{path or '.'}: fast {a!r} != gx {b!r}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                return f"{path}.{k}: only in {'gx' if k in b else 'fast'}"
            found = first_difference(a[k], b[k], f"{path}.{k}")
            if found:
                return found
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items (fast) != {len(b)} (gx)"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
    return None


@pytest.mark.parametrize("entity", sorted(ENTITIES))
@settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fast_path_gives_gx_results_on_each_batch(entity, data, tmp_path_factory):
    batches = list(data.draw(entity_batches(entity)))
    variant = data.draw(suite_variant(entity))
    folder = None
    if variant is not None:
        folder = tmp_path_factory.mktemp("suite")
        (folder / f"{entity}.json").write_text(json.dumps(variant))
        folder = str(folder)
    fast, gx = _both(entity, batches, folder)
    for b in batches:
        assert fast[b.key].result["meta"]["audited_by"] == "tenantlake.quality.fast"
        assert gx[b.key].result["meta"]["audited_by"] == "great_expectations"
        ours, theirs = _comparable(fast[b.key]), _comparable(gx[b.key])
        assert ours == theirs, (first_difference(ours, theirs), b.kind, b.params, b.rows.to_pylist(), variant)


def test_the_differential_sees_a_wrong_answer():
    """The comparison above is not blind: one row's reason changed is a difference."""
    entity = "Debt"
    b = quality.AuditBatch(1, "t-1", "FULL_EXPORT", _table(entity, [{"id": "a", "apr": Decimal("150")}]),
                           quality.params_for("t-1", 1, int(BASE.timestamp() * 1e6)))
    fast, gx = _both(entity, [b])
    assert _comparable(fast[1]) == _comparable(gx[1]) and fast[1].quarantined_rows
    fast[1].quarantined_rows[0] = "something else"
    assert _comparable(fast[1]) != _comparable(gx[1])


def _table(entity: str, rows: list[dict], tenant: str = "t-1") -> pa.Table:
    schema = pa.schema([f.with_nullable(True) for f in lake_schema(ENTITIES[entity])])
    base = {"tenant_id": tenant, "_op": "insert", "created_at": BASE, "updated_at": BASE}
    return pa.Table.from_pylist([{**base, **r} for r in rows], schema=schema)


def _params(tenant: str, rows: int) -> dict:
    return quality.params_for(tenant, rows, int(BASE.timestamp() * 1e6))


def test_benchmark_shaped_fleet_agrees_with_gx():
    """The benchmark's kind of load (many tiny batches of every entity, a few defects) gives the
    same audits by both engines: a seeded sample, not a hypothesis search."""
    rng = random.Random(7)
    seen = set()
    for entity in sorted(ENTITIES):
        pools = {a.column: _column_pool(a) for a in ENTITIES[entity].attributes}
        batches = []
        for key in range(12):
            tenant = rng.choice(sorted(PUBLISHED))
            rows = [{c: rng.choice(p) for c, p in pools.items()} for _ in range(rng.randint(0, 5))]
            batches.append(quality.AuditBatch(key, tenant, rng.choice(KINDS), _table(entity, rows, tenant),
                                              _params(tenant, len(rows))))
        fast, gx = _both(entity, batches)
        for k in range(12):
            ours, theirs = _comparable(fast[k]), _comparable(gx[k])
            assert ours == theirs, (entity, k, first_difference(ours, theirs))
        seen.update(name for a in fast.values() for name in ("failed", "warned", "quarantined") if
                    (a.failed if name == "failed" else a.warned if name == "warned" else a.quarantined_rows))
    assert seen == {"failed", "warned", "quarantined"}  # the sample exercises every severity


@pytest.mark.slow
@pytest.mark.parametrize("entity", ["Debt", "Consumer"])
def test_a_large_batch_gets_the_same_audit_from_both_engines(entity):
    """What lets large batches skip GX: at 30,000 rows, with thousands of defects of every kind
    (more than GX's lists of examples hold), the evaluator's result is GX's, value for value."""
    rng = random.Random(11)
    pools = {a.column: _column_pool(a) for a in ENTITIES[entity].attributes}
    rows = [{c: rng.choice(p) for c, p in pools.items()} for _ in range(30_000)]
    batch = quality.AuditBatch("big", "t-2", "INCREMENTAL_EXPORT", _table(entity, rows, "t-2"),
                               _params("t-2", len(rows)))
    fast, gx = _both(entity, [batch])
    assert fast["big"].result["meta"]["audited_by"] == "tenantlake.quality.fast"
    ours, theirs = _comparable(fast["big"]), _comparable(gx["big"])
    assert len(theirs["quarantined"]) > 1000  # the sample has defects to disagree on
    assert ours == theirs, first_difference(ours, theirs)
