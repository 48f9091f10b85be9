"""Differential property tests: our decoders against boto3's TypeDeserializer (the reference), and
the bulk path against the precise path (the same rows and the same quarantine reasons)."""

import base64
import decimal
import json
from decimal import Decimal

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenantlake.contracts import entity
from tenantlake.formats.attributes import BadValue, item
from tenantlake.formats.dynamodb_json import Source, decode_fast, decode_file, decode_precise
from tests.tenantlake.formats.kit import debt, plan

deser = TypeDeserializer()

EDGE_N = ["0", "-0", "1E-130", "-1E-130", "9.9999999999999999999999999999999999999E+125", "1" * 38,
          "-" + "9" * 38, "0.00000000000000000000000000000000000001", "1520.75", "1e3", "1E+125", "-0.5"]


def numbers():
    finite = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
        lambda d: len(d.as_tuple().digits) <= 38 and (not d or -130 <= d.adjusted() <= 125))
    return st.one_of(st.sampled_from(EDGE_N), finite.map(str), st.integers(-10**37, 10**37).map(str))


def scalars():
    return st.one_of(
        st.text(max_size=30).map(lambda s: {"S": s}),
        numbers().map(lambda n: {"N": n}),
        st.binary(max_size=20).map(lambda b: {"B": base64.b64encode(b).decode()}),
        st.booleans().map(lambda b: {"BOOL": b}),
        st.just({"NULL": True}),
        st.sets(st.text(max_size=10), min_size=1, max_size=5).map(lambda s: {"SS": sorted(s)}),
        st.sets(st.integers(-10**6, 10**6), min_size=1, max_size=5).map(lambda s: {"NS": [str(x) for x in sorted(s)]}),
        st.sets(st.binary(min_size=1, max_size=8), min_size=1, max_size=3).map(
            lambda s: {"BS": [base64.b64encode(x).decode() for x in sorted(s)]}),
    )


values = st.recursive(scalars(), lambda inner: st.one_of(
    st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4).map(lambda m: {"M": m}),
    st.lists(inner, max_size=4).map(lambda ls: {"L": ls}),
), max_leaves=12)
items = st.dictionaries(st.text(min_size=1, max_size=12), values, min_size=1, max_size=8)


def as_botocore_gives_it(av):
    """boto3's TypeDeserializer sees B and BS after botocore has base64-decoded them."""
    (kind, v), = av.items()
    if kind == "B":
        return {"B": base64.b64decode(v)}
    if kind == "BS":
        return {"BS": [base64.b64decode(x) for x in v]}
    if kind == "M":
        return {"M": {k: as_botocore_gives_it(x) for k, x in v.items()}}
    if kind == "L":
        return {"L": [as_botocore_gives_it(x) for x in v]}
    return av


def boto3_plain(v):
    """boto3's result in our shapes: sets as sorted lists, Binary as bytes."""
    if isinstance(v, Binary):
        return bytes(v)
    if isinstance(v, set | frozenset):
        return sorted(boto3_plain(x) for x in v)
    if isinstance(v, dict):
        return {k: boto3_plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [boto3_plain(x) for x in v]
    return v


def ours_plain(v):
    if isinstance(v, dict):
        return {k: ours_plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [ours_plain(x) for x in v]
    return v


def _sets_sorted(v, av):
    """Our sets keep the order given; compare them sorted as boto3's are."""
    kind, inner = next(iter(av.items()))
    if kind in ("SS", "NS", "BS"):
        return sorted(v)
    if kind == "M":
        return {k: _sets_sorted(v[k], inner[k]) for k in v}
    if kind == "L":
        return [_sets_sorted(x, a) for x, a in zip(v, inner, strict=True)]
    return v


@settings(max_examples=400, deadline=None)
@given(items)
def test_our_attribute_decoder_agrees_with_boto3(doc):
    ours = item(doc)
    theirs = {k: boto3_plain(deser.deserialize(as_botocore_gives_it(v))) for k, v in doc.items()}
    assert {k: _sets_sorted(ours_plain(v), doc[k]) for k, v in ours.items()} == theirs
    for k, v in ours.items():  # numbers are exact Decimals, equal to boto3's digit for digit
        if "N" in doc[k]:
            assert isinstance(v, Decimal) and str(v) == str(deser.deserialize(doc[k]))


@pytest.mark.parametrize("bad", [{"N": "1" * 39}, {"N": "1." + "0" * 38}])
def test_both_refuse_more_than_38_digits(bad):
    with pytest.raises(BadValue, match="n_precision"):
        item({"a": bad})
    with pytest.raises(decimal.DecimalException):  # boto3 traps Inexact / Rounded
        deser.deserialize(bad)


@pytest.mark.parametrize("bad", [{"N": "1E+126"}, {"N": "1E-131"}, {"N": "NaN"}, {"N": "Infinity"}, {"SS": []},
                                 {"N": "\u0661\u0669.5"}])  # Arabic-Indic digits: Python's Decimal reads them
def test_where_dynamodb_is_stricter_than_boto3_we_follow_dynamodb(bad):
    """boto3's context allows these; DynamoDB's documented limits do not (see dynamodb-exports.md)."""
    deser.deserialize(bad)  # boto3 accepts
    with pytest.raises(BadValue):
        item({"a": bad})


# ---- bulk path == precise path -------------------------------------------------------------------

PERTURB = {
    "balance": ["12.3", "-0.01", "1" * 20, "12.345", "1E+3", "1e-2", "00012.50", "+5", " 5", "1" * 39, "NaN"],
    "apr": ["0", "99.9999", "100.00001", "7.5", "+7.5", "+.5"],
    # "0x1F", "+7": forms Arrow's integer and decimal casts read, and DynamoDB's grammar does not
    "delinquencyDays": ["0", "30", "1.5", "1e2", "9" * 20, "0x1F", "0X1", "+7"],
    "createdAt": ["2026-10-01T10:00:00Z", "2026-10-01T10:00:00.123456Z", "2026-10-01", "2026-13-01T00:00:00Z",
                  "2026-10-01T10:00:00+02:00", "not a time"],
    "_lastChangedAt": ["1790000000000", "1.5", "-1", "0x1A0B"],
}


@st.composite
def debt_lines(draw):
    lines = []
    for i in range(draw(st.integers(1, 12))):
        attrs = {}
        for name, choices in PERTURB.items():
            if draw(st.booleans()):
                kind = "S" if name == "createdAt" else "N"
                attrs[name] = {kind: draw(st.sampled_from(choices))}
        if draw(st.integers(0, 9)) == 0:
            attrs["tags"] = draw(st.sampled_from([{"SS": []}, {"SS": ["a", "a"]}, {"SS": ["x"]}, {"NULL": True}]))
        if draw(st.integers(0, 9)) == 0:
            attrs["balance"] = draw(st.sampled_from([{"N": "1", "NULL": True}, {"NULL": False}, {}]))
        if draw(st.integers(0, 12)) == 0:
            attrs["consumerId"] = {"NULL": True}
        lines.append(json.dumps({"Item": debt(i, **attrs)}).encode())
    return b"\n".join(lines) + b"\n"


SRC = Source("agency-001", "e-1", "data/x.json.gz", "FULL_EXPORT", 1793491200000000)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(debt_lines())
def test_bulk_and_precise_paths_give_the_same_rows_and_reasons(text):
    fast = decode_fast(text, entity("Debt"), SRC)
    precise = decode_precise(text, entity("Debt"), SRC)
    assert fast.rows.to_pylist() == precise.rows.to_pylist()
    assert [(q["_line"], q["_reason"]) for q in fast.quarantine.to_pylist()] == \
        [(q["_line"], q["_reason"]) for q in precise.quarantine.to_pylist()]


# ---- bulk path == precise path, on drifting data ---------------------------------------------

DATES = st.sampled_from(["2026-10-01", "2026-10-01T10:00:00Z", "2026-10-01 10:00:00", "2026-10-01T10:00:00.000Z",
                         "2026-10", "19.99"])
odd_values = st.one_of(values, DATES.map(lambda s: {"S": s}), st.sampled_from([
    {}, {"S": None}, {"N": 5}, {"S": "a", "N": "1"}, {"NULL": False}, {"s": "lower"}, {"SS": []}, {"SS": ["a", "a"]},
    {"L": [None]}, {"N": "1e400"}, {"B": "not base64!"}, {"S": "\x01ctl"}, {"M": {"k": None}}, "bare", 7, None,
]))
names = st.text(min_size=1, max_size=6)


@st.composite
def drifting_item(draw, make, shaped: str):
    """An item with undeclared attributes, undeclared fields inside its declared map or list
    elements, type changes, dirty keys, or its own tenant field: whatever a newer app might send."""
    attrs = {}
    for _ in range(draw(st.integers(0, 3))):
        attrs[draw(st.sampled_from(["riskScore", "hardshipSince", "note", "nested"]) | names)] = draw(
            odd_values if draw(st.integers(0, 5)) == 0 else values)
    if draw(st.booleans()):
        extra = draw(st.dictionaries(names, values, max_size=3))
        if shaped == "bureau":
            tradeline = {"opened": {"S": "2019"}, **draw(st.dictionaries(names, values, max_size=2))}
            attrs["bureau"] = {"M": {"name": {"S": "TU"}, "tradeline": {"M": tradeline}, **extra}}
        else:
            elements = [{"M": {"creditorName": {"S": "A"}, "newApr": {"N": "7"},
                               **draw(st.dictionaries(names, values, max_size=2))}},
                        draw(st.sampled_from([{"NULL": True}, {"M": {}}, {"S": "not a map"}]))]
            attrs["concessions"] = {"L": elements[: draw(st.integers(0, 2))]}
    if draw(st.integers(0, 3)) == 0:
        name, sent = draw(st.sampled_from([("apr", "S"), ("_version", "S"), ("consumerId", "N"), ("_lastChangedAt", "S"),
                                           ("createdAt", "N"), ("__typename", "BOOL")]))
        attrs[name] = {sent: draw(st.sampled_from(["19.99", "19.99x", "1e2", "", " 5", "7", "1790000000000"]))
                       if sent != "BOOL" else True}
    if draw(st.integers(0, 6)) == 0:
        attrs["id"] = draw(st.sampled_from(["absent", {"S": ""}, {"N": "1"}, {"NULL": True}, {"S": " "}]))
    if draw(st.integers(0, 8)) == 0:
        attrs["tenantId"] = draw(st.sampled_from([{"S": "agency-001"}, {"S": "agency-002"}, {"N": "1"}]))
    item = {**make(draw(st.integers(1, 4))), **attrs}  # a JSON null value stays: pyarrow reads it as absent
    return {k: v for k, v in item.items() if v != "absent"}


def _same(text: bytes, name: str, src: Source):
    fast = decode_file(text, entity(name), src)
    precise = decode_precise(text, entity(name), src)
    assert fast.rows.to_pylist() == precise.rows.to_pylist()
    assert [(q["_line"], q["_reason"], q["_detail"]) for q in fast.quarantine.to_pylist()] == \
        [(q["_line"], q["_reason"], q["_detail"]) for q in precise.quarantine.to_pylist()]
    assert fast.drift == precise.drift
    assert fast.rows.num_rows + fast.quarantine.num_rows == fast.lines == precise.lines


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([("Debt", debt, "bureau"), ("Plan", plan, "concessions")]).flatmap(
    lambda e: st.tuples(st.just(e[0]), st.lists(drifting_item(e[1], e[2]), min_size=1, max_size=8))))
def test_bulk_and_precise_paths_agree_on_drifting_full_exports(case):
    name, items = case
    _same(b"".join(json.dumps({"Item": i}).encode() + b"\n" for i in items), name, SRC)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(drifting_item(debt, "bureau"), drifting_item(debt, "bureau"),
                          st.sampled_from(["new", "old", "both", "keys"]), st.integers(1, 10**6)),
                min_size=1, max_size=6))
def test_bulk_and_precise_paths_agree_on_drifting_change_lines(changes):
    lines = []
    for new, old, shape, ts in changes:
        doc = {"Metadata": {"WriteTimestampMicros": {"N": str(ts)}}, "Keys": {"id": (new.get("id") or {"S": "d-0"})}}
        if shape in ("new", "both"):
            doc["NewImage"] = new
        if shape in ("old", "both"):
            doc["OldImage"] = old
        lines.append(json.dumps(doc).encode())
    _same(b"\n".join(lines) + b"\n", "Debt", Source("agency-001", "e-1", "data/x.json.gz", "INCREMENTAL_EXPORT", 1))


def test_a_short_text_is_read_line_by_line_and_a_long_one_in_bulk(monkeypatch):
    """Tiny hourly increments are most of a fleet's batches: below SMALL_TEXT the bulk path's fixed
    cost is not worth paying, and the rows, reasons and drift are the same either way."""
    from tenantlake.formats import dynamodb_json

    monkeypatch.setattr(dynamodb_json, "SMALL_TEXT", 16 << 10)
    bulk = []
    monkeypatch.setattr(dynamodb_json, "decode_fast", lambda text, *a, **k: bulk.append(len(text)) or decode_fast(
        text, *a, **k))
    items = [debt(i, riskScore={"N": "7"}) for i in range(1, 4)] + [debt(4, balance={"N": "abc"})]
    short = b"".join(json.dumps({"Item": i}).encode() + b"\n" for i in items)
    _same(short, "Debt", SRC)
    assert bulk == []
    long = short * 40  # repeated keys are the ingest's concern, not the decoder's
    assert len(long) > dynamodb_json.SMALL_TEXT
    _same(long, "Debt", SRC)
    assert bulk == [len(long)]
