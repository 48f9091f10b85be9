"""The drift policy as the decoder applies it, on hand-written items: benign evolution is published
with its undeclared parts kept losslessly in `_extra` and recorded as drift; type changes are
coerced when exact; dirty keys are quarantined with their reason. Every case runs through both
paths (the bulk one and the line-by-line one) and they must agree on rows, reasons and drift."""

import dataclasses
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeDeserializer

from tenantlake.contracts import entity
from tenantlake.formats import dynamodb_json
from tenantlake.formats.drift import Drift, merge_drift
from tenantlake.formats.dynamodb_json import Source, decode_file, decode_precise
from tenantlake.formats.ion import decode_ion
from tenantlake.formats.manifest import Slice
from tenantlake.formats.streams import decode_stream
from tests.tenantlake.formats.kit import debt, line, plan
from tests.tenantlake.formats.test_differential import as_botocore_gives_it

deser = TypeDeserializer()
AT = 1793491200000000
FULL = Source("agency-001", "e-1", "data/a.json.gz", "FULL_EXPORT", AT)
INCR = Source("agency-001", "e-2", "data/b.json.gz", "INCREMENTAL_EXPORT", AT)


def both(text: bytes, name: str = "Debt", src: Source = FULL):
    """Decode by the bulk path (as ingest does) and line by line; they must agree entirely."""
    fast, precise = decode_file(text, entity(name), src), decode_precise(text, entity(name), src)
    assert fast.rows.to_pylist() == precise.rows.to_pylist()
    assert fast.quarantine.to_pylist() == precise.quarantine.to_pylist()
    assert fast.drift == precise.drift
    return fast


@pytest.fixture
def precise_lines(monkeypatch):
    """How many lines the bulk path handed to the line-by-line path."""
    seen = []
    real = dynamodb_json._precise_line

    def counting(entity_, raw, n, src):
        seen.append(n)
        return real(entity_, raw, n, src)
    monkeypatch.setattr(dynamodb_json, "_precise_line", counting)
    return seen


def change(new=None, old=None, keys=None, ts=AT):
    stamp = {"N": str(ts)} if isinstance(ts, int | str) else ts  # a float: sent as a bare JSON number
    doc = {"Metadata": {"WriteTimestampMicros": stamp}, "Keys": keys if keys is not None else {"id": (new or old)["id"]}}
    if new is not None:
        doc["NewImage"] = new
    if old is not None:
        doc["OldImage"] = old
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


HISTORY = {"L": [{"M": {"month": {"S": "2026-09"}, "balance": {"N": "1490.10"}}},
                 {"M": {"month": {"S": "2026-08"}, "status": {"S": "LATE"}}}]}


# ---- `_extra`: the undeclared parts, as sent, nested as in the item ---------------------------

def test_a_new_attribute_and_a_new_field_in_a_declared_map_are_published_and_kept(precise_lines):
    bureau = {"M": {"name": {"S": "TRANSUNION"}, "history": HISTORY,
                    "tradeline": {"M": {"opened": {"S": "2019-04"}, "highCredit": {"N": "2000"}}}}}
    d = both(line(debt(1, riskScore={"N": "712"}, bureau=bureau)))
    (row,) = d.rows.to_pylist()
    assert row["_extra"] == ('{"bureau":{"M":{"history":{"L":[{"M":{"balance":{"N":"1490.10"},"month":{"S":"2026-09"}}},'
                             '{"M":{"month":{"S":"2026-08"},"status":{"S":"LATE"}}}]}}},"riskScore":{"N":"712"}}')
    assert row["bureau"] == {"name": "TRANSUNION", "pulledAt": None,
                             "tradeline": {"opened": "2019-04", "highCredit": Decimal("2000.00")}}
    assert d.quarantine.num_rows == 0
    assert precise_lines == [1]  # decode_precise's own pass only: the bulk path took the drifting line


def test_nothing_undeclared_gives_a_null_extra():
    assert both(line(debt(1))).rows["_extra"].to_pylist() == [None]


def test_a_new_field_in_one_element_of_a_declared_list_keeps_its_position():
    concessions = {"L": [{"M": {"creditorName": {"S": "CHASE"}, "newApr": {"N": "8.5"}}},
                         {"NULL": True},
                         {"M": {"creditorName": {"S": "CITI"}, "newApr": {"N": "9.9"}, "waived": {"BOOL": True}}}]}
    (row,) = both(line(plan(1, concessions=concessions)), "Plan").rows.to_pylist()
    assert row["_extra"] == '{"concessions":{"L":[{"M":{}},{"M":{}},{"M":{"waived":{"BOOL":true}}}]}}'
    assert row["concessions"] == [{"creditorName": "CHASE", "newApr": Decimal("8.5000")}, None,
                                  {"creditorName": "CITI", "newApr": Decimal("9.9000")}]


def test_an_element_of_another_shape_in_a_declared_list_is_published_and_kept_at_its_position():
    """A newer app puts a note among the concessions (maps): the row is published, the note is null
    in the column and kept whole in `_extra` at its position (an agency's found defect: all such
    plans were quarantined as type_mismatch)."""
    concessions = {"L": [{"M": {"creditorName": {"S": "CHASE"}, "newApr": {"N": "8.5"}}},
                         {"S": "waived fee"}, {"L": [{"N": "5"}]}]}
    d = both(line(plan(1, concessions=concessions)) + line(plan(2, concessions={"L": [{"N": "1"}]})), "Plan")
    assert d.quarantine.num_rows == 0
    assert d.rows["concessions"].to_pylist() == [[{"creditorName": "CHASE", "newApr": Decimal("8.5000")}, None, None],
                                                 [None]]
    assert d.rows["_extra"].to_pylist() == ['{"concessions":{"L":[{"M":{}},{"S":"waived fee"},{"L":[{"N":"5"}]}]}}',
                                            '{"concessions":{"L":[{"N":"1"}]}}']
    assert [(x.path, x.type, x.what, x.rows) for x in d.drift] == [
        ("concessions[]", "L", "new_shape", 1), ("concessions[]", "N", "new_shape", 1),
        ("concessions[]", "S", "new_shape", 1)]


def test_a_broken_element_of_another_shape_keeps_its_own_reason():
    d = both(line(plan(1, concessions={"L": [{"N": "1x"}]})), "Plan")
    assert [(q["_reason"], q["_detail"][:40]) for q in d.quarantine.to_pylist()] == [
        ("n_invalid", "attribute 'concessions[0]': '1x' is not ")]


def test_every_dynamodb_type_and_awkward_text_survive_in_extra():
    odd = {"S": 'tab\there "quoted" back\\slash\nnew line, é, 😀, \u2028'}
    hardship = {"M": {"since": {"S": "2026-03-15"}, "docs": {"L": [{"B": "AAE="}, {"NULL": True}, {"BOOL": False}]},
                      "codes": {"NS": ["1", "2.50"]}, "labels": {"SS": ["b", "a"]}, "scans": {"BS": ["AAE=", "AgM="]},
                      "a.b \"c\"": {"N": "-0.000001"}, "empty": {"M": {}}, "none": {"L": []}}}
    (row,) = both(line(debt(1, note=odd, hardship=hardship, openedOn={"S": "2026-03-15T10:00:00Z"}))).rows.to_pylist()
    assert json.loads(row["_extra"]) == {"note": odd, "hardship": hardship, "openedOn": {"S": "2026-03-15T10:00:00Z"}}
    # canonical text: keys sorted at every level, no spaces, UTF-8 as is
    assert row["_extra"].startswith('{"hardship":{"M":{"a.b \\"c\\"":{"N":"-0.000001"},"codes":{"NS":["1","2.50"]}')


def _plain(v):
    """A typed column value as the plain value boto3 would give (absent map fields dropped)."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _merge(declared, extra):
    """`_extra` merged into the declared attributes: maps key by key, lists position by position."""
    if isinstance(declared, dict) and isinstance(extra, dict):
        return {**declared, **{k: _merge(declared[k], v) if k in declared else v for k, v in extra.items()}}
    if isinstance(declared, list) and isinstance(extra, list):
        return [_merge(a, b) for a, b in zip(declared, extra, strict=True)]
    return extra


def _typed_as_boto3(name, v):
    """boto3's value of a declared attribute in the form our column holds it (a test-side reading)."""
    kind = entity(name).by_name
    out = {}
    for attr, value in v.items():
        a = kind.get(attr)
        if a is not None and a.kind == "timestamp":
            value = datetime.fromisoformat(value).astimezone(UTC)
        elif a is not None and a.kind == "date":
            value = date.fromisoformat(value)
        elif a is not None and a.kind == "epoch_ms":
            value = datetime.fromtimestamp(int(value) / 1000, UTC)
        elif a is not None and a.kind == "string_set":
            value = sorted(value)
        out[attr] = value
    return out


LOSSLESS = [
    ("Debt", debt(1, riskScore={"N": "712"}, bureau={"M": {"name": {"S": "TU"}, "history": HISTORY, "tradeline": {
        "M": {"opened": {"S": "2019"}, "highCredit": {"N": "2000"}, "limitHistory": {"NS": ["1000", "1500"]}}}}},
        hardship={"M": {"docs": {"L": [{"B": "AAE="}, {"NULL": True}]}, "q\"k": {"S": "ü\n"}}})),
    ("Plan", plan(2, concessions={"L": [{"M": {"creditorName": {"S": "A"}, "newApr": {"N": "7"}}},
                                         {"M": {"creditorName": {"S": "B"}, "waived": {"BOOL": True},
                                                "terms": {"M": {"months": {"N": "6"}}}}}]},
                  pausedUntil={"S": "2027-01-01"})),
    ("Plan-new-shape", plan(3, concessions={"L": [{"S": "waived fee"}, {"M": {"newApr": {"N": "7"}}}]})),
    ("Consumer", {"id": {"S": "c-9"}, "status": {"S": "ON_HOLD"}, "firstName": {"S": "Zoë"},
                  "preferredLanguage": {"S": "es"}, "consents": {"L": [{"M": {"kind": {"S": "sms"}}}]}}),
]


@pytest.mark.parametrize(("name", "item"), LOSSLESS, ids=[n for n, _ in LOSSLESS])
def test_merging_extra_into_the_declared_attributes_gives_the_item_back(name, item):
    name = name.split("-")[0]
    (row,) = both(line(item), name).rows.to_pylist()
    contract = entity(name)
    declared = {a.name: _plain(row[a.column]) for a in contract.attributes if row[a.column] is not None}
    declared = {k: sorted(v) if contract.by_name[k].kind == "string_set" else v for k, v in declared.items()}
    extra = {k: deser.deserialize(as_botocore_gives_it(v)) for k, v in json.loads(row["_extra"]).items()}
    original = {k: deser.deserialize(as_botocore_gives_it(v)) for k, v in item.items()}
    assert _merge(declared, extra) == _typed_as_boto3(name, original)


# ---- drift observations -----------------------------------------------------------------------

def test_drift_counts_rows_per_path_type_and_kind_with_first_and_last_event_times():
    text = b"".join([
        change(debt(1, riskScore={"N": "700"}), ts=100),
        change(debt(2, riskScore={"N": "650"}, bureau={"M": {"name": {"S": "TU"}, "history": HISTORY}}), ts=300),
        change(old=debt(3, riskScore={"S": "n/a"}), ts=200),  # a delete keeps its old image
        change(debt(4, id={"S": ""}, riskScore={"N": "1"}), keys={"id": {"S": ""}}, ts=50),  # quarantined
        change(debt(5, apr={"S": "19.99"}), ts=250),
        change(debt(6, apr={"S": "19.99x"}, riskScore={"N": "2"}), ts=40),  # quarantined: not counted
    ])
    d = both(text, src=INCR)
    assert d.drift == [
        Drift("apr", "S->N", "coerced", 1, 250, 250),
        Drift("bureau.history", "L", "new_field", 1, 300, 300),
        Drift("riskScore", "N", "new_attribute", 2, 100, 300),
        Drift("riskScore", "S", "new_attribute", 1, 200, 200),
    ]
    assert [q["_reason"] for q in d.quarantine.to_pylist()] == ["empty_key", "type_mismatch"]


def test_a_row_counts_once_however_many_elements_carry_the_field():
    waived = {"M": {"creditorName": {"S": "A"}, "newApr": {"N": "7"}, "waived": {"BOOL": True}}}
    d = both(line(plan(1, concessions={"L": [waived, waived, waived]})), "Plan")
    assert d.drift == [Drift("concessions[].waived", "BOOL", "new_field", 1, AT, AT)]


def test_a_name_with_a_dot_is_not_the_path_of_a_nested_field():
    """A bureau field named "tradeline.history" and the field history of bureau.tradeline are two
    drift paths (they were counted as one, found by an independent drift test)."""
    bureau = {"M": {"tradeline.history": {"N": "1"}, "tradeline": {"M": {"history": {"N": "2"}}}}}
    d = both(line(debt(1, bureau=bureau, **{"risk score": {"N": "3"}})))
    assert [(x.path, x.type, x.what) for x in d.drift] == [
        ('"risk score"', "N", "new_attribute"), ('bureau."tradeline.history"', "N", "new_field"),
        ("bureau.tradeline.history", "N", "new_field")]


def test_drift_of_many_slices_merges():
    a = [Drift("x", "N", "new_attribute", 2, 10, 20), Drift("y", "S", "new_attribute", 1, 5, 5)]
    b = [Drift("x", "N", "new_attribute", 3, 4, 15)]
    assert merge_drift(a, b) == [Drift("x", "N", "new_attribute", 5, 4, 20), Drift("y", "S", "new_attribute", 1, 5, 5)]


# ---- type changes -----------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "attrs", "column", "value", "drift"), [
    ("Debt", {"apr": {"S": "19.99"}}, "apr", Decimal("19.9900"), ("apr", "S->N")),
    ("Debt", {"balance": {"S": "1e3"}}, "balance", Decimal("1000.00"), ("balance", "S->N")),
    ("Debt", {"delinquencyDays": {"S": "30"}}, "delinquency_days", 30, ("delinquencyDays", "S->N")),
    ("Debt", {"creditorName": {"N": "42.10"}}, "creditor_name", "42.10", ("creditorName", "N->S")),
    ("Debt", {"tags": {"L": [{"S": "medical"}, {"S": "joint"}]}}, "tags", ["medical", "joint"], ("tags", "L->SS")),
    ("Debt", {"bureau": {"M": {"tradeline": {"M": {"highCredit": {"S": "2000.5"}}}}}}, "bureau",
     {"name": None, "pulledAt": None, "tradeline": {"opened": None, "highCredit": Decimal("2000.50")}},
     ("bureau.tradeline.highCredit", "S->N")),
    ("Plan", {"concessions": {"L": [{"M": {"newApr": {"S": "7.25"}}}]}}, "concessions",
     [{"creditorName": None, "newApr": Decimal("7.2500")}], ("concessions[].newApr", "S->N")),
])
def test_a_number_sent_as_text_or_text_as_a_number_is_coerced_when_exact(name, attrs, column, value, drift):
    item = (debt if name == "Debt" else plan)(1, **attrs)
    d = both(line(item), name)
    assert d.rows.column(column).to_pylist() == [value]
    assert d.rows["_extra"].to_pylist() == [None]
    assert [(x.path, x.type, x.what, x.rows) for x in d.drift] == [(*drift, "coerced", 1)]


def test_a_timestamp_finer_than_microseconds_is_published_cut_to_them_and_recorded():
    """.NET writes 7 digits of a second; the lake and Redshift hold 6. Digits cut that are all 0 lose
    nothing and are not drift."""
    sent = ["2026-10-01T10:00:00.1234567Z", "2026-10-01T12:00:00.1234560+02:00", "2026-10-01T10:00:00.5Z"]
    d = both(b"".join(line(debt(i, createdAt={"S": s})) for i, s in enumerate(sent, 1)))
    assert [str(v) for v in d.rows["created_at"].to_pylist()] == [
        "2026-10-01 10:00:00.123456+00:00", "2026-10-01 10:00:00.123456+00:00", "2026-10-01 10:00:00.500000+00:00"]
    assert [(x.path, x.type, x.what, x.rows) for x in d.drift] == [("createdAt", "S", "truncated", 1)]


@pytest.mark.parametrize(("attrs", "detail"), [
    ({"apr": {"S": "19.99x"}}, "attribute 'apr': expected N, got S '19.99x'"),
    ({"balance": {"S": "12.345"}}, "attribute 'balance': expected N, got S '12.345' (12.345 has more than 2 decimal"),
    ({"delinquencyDays": {"S": "1.5"}}, "attribute 'delinquencyDays': expected N, got S '1.5' (1.5 is not a 64-bit"),
    ({"creditorName": {"BOOL": True}}, "attribute 'creditorName': expected S, got BOOL true"),
    ({"apr": {"BOOL": False}}, "attribute 'apr': expected N, got BOOL false"),
    ({"createdAt": {"N": "1790000000000"}}, "attribute 'createdAt': expected S, got N '1790000000000' ("),
    ({"tags": {"S": "medical"}}, "attribute 'tags': expected SS, got S 'medical'"),
    ({"tags": {"L": [{"S": "medical"}, {"S": "medical"}]}}, "attribute 'tags': expected SS, got an L that is not a set"),
    ({"tags": {"L": [{"S": "medical"}, {"N": "1"}]}}, "attribute 'tags': expected SS, got an L that is not a set"),
    ({"tags": {"L": []}}, "attribute 'tags': expected SS, got an L that is not a set"),
    ({"bureau": {"L": []}}, "attribute 'bureau': expected M, got L"),
    ({"bureau": {"M": {"tradeline": {"S": "2019"}}}}, "attribute 'bureau.tradeline': expected M, got S '2019'"),
    ({"bureau": {"M": {"name": {"SS": ["TU"]}}}}, "attribute 'bureau.name': expected S, got SS"),
])
def test_a_type_change_that_cannot_convert_exactly_is_quarantined_naming_path_and_types(attrs, detail):
    d = both(line(debt(1)) + line(debt(2, **attrs)))
    assert d.rows["id"].to_pylist() == ["d-1"]
    (q,) = d.quarantine.to_pylist()
    assert (q["_line"], q["_reason"]) == (2, "type_mismatch")
    assert q["_detail"].startswith(detail)


def test_enum_values_outside_the_contract_are_not_judged_by_the_decoder():
    d = both(line(debt(1, accountType={"S": "BNPL"}, source={"S": "EXPERIAN"})))
    assert d.rows.column("account_type").to_pylist() == ["BNPL"] and d.quarantine.num_rows == 0
    assert both(line(plan(2, status={"S": "PAUSED"})), "Plan").rows["status"].to_pylist() == ["PAUSED"]


# ---- dirty keys -------------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "reason", "detail"), [
    (None, "missing_key", "the item has no 'id'"),
    ({"S": ""}, "empty_key", "attribute 'id': the partition key is the empty string"),
    ({"N": "5"}, "key_type", "attribute 'id': the partition key must be S, got N '5'"),
    ({"NULL": True}, "key_type", "attribute 'id': the partition key must be S, got NULL true"),
    ({"M": {"S": {"S": "d-1"}}}, "key_type", "attribute 'id': the partition key must be S, got M"),
    ({"SS": ["d-1"]}, "key_type", "attribute 'id': the partition key must be S, got SS"),
])
def test_a_dirty_key_is_quarantined_with_its_reason(key, reason, detail):
    bad = line(debt(9, id=key))
    d = both(line(debt(1)) + bad + line(debt(2)))
    assert d.rows["id"].to_pylist() == ["d-1", "d-2"]
    assert [(q["_line"], q["_reason"], q["_detail"], q["_raw"]) for q in d.quarantine.to_pylist()] == [
        (2, reason, detail, bad.rstrip(b"\n"))]


def test_a_whitespace_id_is_a_key_dynamodb_accepts():
    assert both(line(debt(1, id={"S": " "}))).rows["id"].to_pylist() == [" "]


@pytest.mark.parametrize(("doc", "reason"), [
    (change(debt(1), keys={"id": {"S": "d-2"}}), "key_mismatch"),
    (change(old=debt(1), keys={"id": {"S": "d-2"}}), "key_mismatch"),
    (change(debt(1), keys={"id": {"N": "1"}}), "key_type"),
    (change(debt(1, id=None), keys={"id": {"S": ""}}), "empty_key"),
    (change(debt(1, id=None), keys={"pk": {"S": "d-1"}}), "missing_key"),
    (change(debt(1), keys={}), "missing_key"),  # the image's key does not stand in for the Keys
    (change(debt(1), keys={"id": {"S": "d-1"}, "sk": {"S": "x"}}), "key_mismatch"),  # keyed otherwise
    (change(debt(1), old=debt(1, id={"S": "d-2"})), "key_mismatch"),  # the two images of two items
    (change(debt(1), old=debt(1, id=None)), "key_mismatch"),  # DynamoDB writes every image with its key
    (change(debt(1), old=debt(1, id={"N": "1"})), "key_type"),
])
def test_a_change_line_whose_keys_are_dirty_or_disagree_with_its_image_is_quarantined(doc, reason):
    d = both(change(debt(5)) + doc, src=INCR)
    assert d.rows["id"].to_pylist() == ["d-5"]
    assert [(q["_line"], q["_reason"]) for q in d.quarantine.to_pylist()] == [(2, reason)]


def test_a_write_time_in_any_form_of_dynamodb_number_text_is_read_exactly():
    """WriteTimestampMicros is N text; "1.795158061E+15" is the same integer (it was quarantined as
    missing_timestamp); a fraction or a JSON float is not a time in microseconds."""
    text = (change(debt(1), ts="1.795158061E+15") + change(debt(2), ts="17951580610000.01e2")
            + change(debt(3), ts="1.5") + change(debt(4), ts=1.5e15))
    d = both(text, src=INCR)
    assert [(r["id"], r["_event_ts"]) for r in d.rows.to_pylist()] == [
        ("d-1", datetime(2026, 11, 20, 7, 1, 1, tzinfo=UTC)), ("d-2", datetime(2026, 11, 20, 7, 1, 1, 1, tzinfo=UTC))]
    assert [q["_reason"] for q in d.quarantine.to_pylist()] == ["missing_timestamp"] * 2


def test_times_at_the_ends_of_years_1_to_9999_are_published_and_read_back():
    """The lake holds what Python's datetime holds: both ends, to the microsecond (one past them is
    quarantined: test_bad_input)."""
    text = line(debt(1, createdAt={"S": "0001-01-01T00:00:00Z"}, updatedAt={"S": "9999-12-31T23:59:59.999999Z"},
                     _lastChangedAt={"N": "253402300799999"})) + \
        line(debt(2, createdAt={"S": "0001-01-01T01:00:00+01:00"}, _lastChangedAt={"N": "-62135596800000"}))
    first, second = both(text).rows.to_pylist()
    assert (first["created_at"], first["updated_at"], first["last_changed_at"]) == (
        datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC))
    assert second["created_at"] == second["last_changed_at"] == datetime.min.replace(tzinfo=UTC)


@pytest.mark.parametrize(("sent", "kept"), [
    ("2026-11-01", date(2026, 11, 1)), ("2026-11-01Z", date(2026, 11, 1)), ("2026-11-01-07:00", date(2026, 11, 1)),
    ("2026-11-01+05:30", date(2026, 11, 1)), ("2026-11-01+02:00:00", date(2026, 11, 1)),
    ("20261101", None), ("2026-W44-7", None), ("2026-305", None), ("0000-01-01", None), ("2026-11-01+24:00", None),
    ("2026-11-01T00:00:00Z", None), ("2026-02-30", None), ("2026-11-01z", None),
])
def test_a_date_is_an_awsdate_with_or_without_its_zone_offset(sent, kept):
    """AppSync's AWSDate is YYYY-MM-DD with an optional offset (Z, +hh:mm, +hh:mm:ss; AWS's scalar
    docs); the calendar date is kept as sent. Basic, week and ordinal forms are ISO 8601 but no AWSDate."""
    d = both(line(plan(1)) + line(plan(2, startDate={"S": sent})), "Plan")
    if kept is None:
        assert [(q["_line"], q["_reason"]) for q in d.quarantine.to_pylist()] == [(2, "date_invalid")]
    else:
        assert d.rows["start_date"].to_pylist() == [date(2026, 11, 1), kept] and d.quarantine.num_rows == 0


@pytest.mark.parametrize(("doc", "detail"), [
    (b'{"Metadata":{"WriteTimestampMicros":{"N":"5"}},"Keys":{"id":{"S":"d-7"}},"NewImage":null}',
     "NewImage sent as null"),
    (b'{"Metadata":{"WriteTimestampMicros":{"N":"5"}},"Keys":{"id":{"S":"d-7"}},"OldImage":null,"NewImage":'
     + json.dumps(debt(7)).encode() + b"}", "OldImage sent as null"),
    (b'{"Metadata":null,"Keys":{"id":{"S":"d-7"}},"NewImage":' + json.dumps(debt(7)).encode() + b"}",
     "Metadata sent as null"),
])
def test_a_change_line_with_a_part_sent_as_null_is_quarantined_not_read_as_a_delete(doc, detail):
    """Absent NewImage: a delete. A NewImage of JSON null is no line DynamoDB writes."""
    d = both(change(debt(5)) + doc + b"\n", src=INCR)
    assert [(r["id"], r["_op"]) for r in d.rows.to_pylist()] == [("d-5", "insert")]
    assert [(q["_line"], q["_reason"]) for q in d.quarantine.to_pylist()] == [(2, "not_an_export_line")]
    assert detail in d.quarantine["_detail"][0].as_py()


def test_a_write_time_that_is_no_n_number_names_what_was_sent():
    text = change(debt(1), ts={"S": "1793491200000000"}) + \
        b'{"Metadata":{},"Keys":{"id":{"S":"d-2"}},"NewImage":' + json.dumps(debt(2)).encode() + b"}\n"
    d = both(text, src=INCR)
    assert [q["_detail"] for q in d.quarantine.to_pylist()] == [
        'Metadata.WriteTimestampMicros is {"S":"1793491200000000"}, not an N number of microseconds',
        "Metadata.WriteTimestampMicros is absent"]


@pytest.mark.parametrize("bad", [{"balance": {"N": "abc"}}, {"createdAt": {"S": "2026-13-45"}},
                                 {"consumerId": None}, {"apr": {"BOOL": True}}])
def test_a_delete_is_applied_though_its_old_image_holds_a_value_the_contract_refuses(bad):
    """The value was quarantined when it was written; a delete needs only its key (invariant 4)."""
    old = debt(7, **bad)
    d = both(change(debt(5)) + change(old=old), src=INCR)
    assert [(r["id"], r["_op"]) for r in d.rows.to_pylist()] == [("d-5", "insert"), ("d-7", "remove")]
    assert d.quarantine.num_rows == 0


def test_a_delete_naming_another_tenant_is_still_refused():
    d = both(change(old=debt(7, agencyId={"S": "agency-999"})), src=INCR)
    assert [q["_reason"] for q in d.quarantine.to_pylist()] == ["tenant_mismatch"]


def test_a_keys_only_delete_takes_its_key_from_keys():
    text = b'{"Metadata":{"WriteTimestampMicros":{"N":"5"}},"Keys":{"id":{"S":"d-7"}}}\n'
    (row,) = both(text, src=dataclasses.replace(INCR, view="NEW_IMAGE")).rows.to_pylist()
    assert (row["id"], row["_op"]) == ("d-7", "remove")


@pytest.mark.parametrize(("bad", "reason"), [
    (b'"note":null', "not_an_attribute_value"), (b'"balance":null', "not_an_attribute_value"),
    (b'"note":{"L":[{"S":"a"},null]}', "not_an_attribute_value"),
    (b'"bureau":{"M":{"history":null}}', "not_an_attribute_value"), (b'"note":{"S":null}', "type_mismatch"),
])
def test_a_json_null_where_a_value_belongs_is_not_read_as_absent(bad, reason):
    """pyarrow reads a JSON null as a missing value; DynamoDB JSON never holds one, so the line is
    refused, by both paths."""
    text = line(debt(1)) + b'{"Item":{"id":{"S":"d-2"},"consumerId":{"S":"c-1"},' + bad + b"}}\n"
    d = both(text)
    assert d.rows["id"].to_pylist() == ["d-1"]
    assert [(q["_line"], q["_reason"]) for q in d.quarantine.to_pylist()] == [(2, reason)]


# ---- large items ------------------------------------------------------------------------------

def _big_history(n: int) -> dict:
    return {"L": [{"M": {"month": {"S": f"20{i % 100:02d}-01"}, "note": {"S": "x" * 180},
                         "balance": {"N": f"{i}.25"}}} for i in range(n)]}


def test_a_400_kb_item_is_decoded_whole_by_the_bulk_path(precise_lines):
    big = debt(2, bureau={"M": {"name": {"S": "TU"}, "history": _big_history(1500)}}, notes={"S": "n" * 20_000})
    text = line(debt(1)) + line(big) + line(debt(3))
    assert 390_000 < len(line(big)) < 420_000
    d = decode_file(text, entity("Debt"), FULL)
    assert precise_lines == []  # nothing went line by line
    row = d.rows.to_pylist()[1]
    assert json.loads(row["_extra"]) == {"bureau": {"M": {"history": big["bureau"]["M"]["history"]}},
                                         "notes": big["notes"]}
    assert d.rows.to_pylist() == decode_precise(text, entity("Debt"), FULL).rows.to_pylist()


def test_a_line_longer_than_a_parse_block_still_takes_the_bulk_path(monkeypatch, precise_lines):
    monkeypatch.setattr(dynamodb_json, "BLOCK", 64 << 10)
    big = debt(2, notes={"S": "n" * 300_000})
    d = decode_file(line(debt(1)) + line(big) + line(debt(3)), entity("Debt"), FULL)
    assert precise_lines == [] and d.rows.num_rows == 3
    assert json.loads(d.rows["_extra"][1].as_py()) == {"notes": big["notes"]}


def test_a_slices_line_index_serves_the_bulk_path_even_without_a_last_newline(precise_lines):
    """The line index stream_slices found is the decoder's: a file's last line may lack its
    newline, and its slice still decodes in bulk, to the rows the decoder finds on its own."""
    text = b"".join(line(debt(i)) for i in range(200)).removesuffix(b"\n")
    assert len(text) > dynamodb_json.SMALL_TEXT
    piece = Slice.of(text, 7)
    d = decode_file(piece.text, entity("Debt"), FULL, True, piece.first_line, piece.line_ends)
    assert precise_lines == [] and d.rows.num_rows == 200 and d.lines == 200
    assert d.rows.to_pylist() == decode_file(text, entity("Debt"), FULL, True, 7).rows.to_pylist()
    assert d.rows["_line"].to_pylist() == list(range(7, 207))


def test_a_declared_attribute_sent_as_null_only_in_a_later_parse_block_stays_in_bulk(monkeypatch, precise_lines):
    """NULL is not in the parse schema (it is inferred where sent): values first NULL in a later
    block read as null in bulk, and {"NULL": false} still goes to the precise path."""
    monkeypatch.setattr(dynamodb_json, "BLOCK", 64 << 10)
    text = b"".join(line(debt(i)) for i in range(400)) + line(debt(400, apr={"NULL": True}, bureau={"NULL": True})) \
        + line(debt(401, balance={"NULL": False})) + line(debt(402, bureau={"M": {"name": {"NULL": True}}}))
    assert len(text) > 3 * (64 << 10)  # four blocks: the NULLs are in the last
    d = both(text)
    assert precise_lines[:1] == [402]  # the bulk path's one hand-off (line 402); decode_precise's own pass follows
    rows = {r["id"]: r for r in d.rows.to_pylist()}
    assert rows["d-400"]["apr"] is None and rows["d-400"]["bureau"] is None
    assert rows["d-402"]["bureau"] == {"name": None, "pulledAt": None, "tradeline": None}
    assert [(q["_line"], q["_reason"]) for q in d.quarantine.to_pylist()] == [(402, "type_mismatch")]


# ---- the bulk path stays in bulk under drift -------------------------------------------------

def test_drift_in_every_line_sends_no_line_to_the_precise_path(precise_lines):
    """A tenant whose app version changed a type or added attributes sends it in every item: that
    must not make every item slow."""
    text = b"".join(line(debt(i, riskScore={"N": str(i)}, bureau={"M": {"history": HISTORY}},
                              hardshipSince={"S": "2026-03-15"}, accountType={"S": "BNPL"}, apr={"S": "19.99"},
                              creditorName={"N": "42"}, scores={"NS": ["1", "2.5"]}, scan={"B": "AAE="}))
                    for i in range(1, 2001))
    d = decode_file(text, entity("Debt"), FULL)
    assert d.rows.num_rows == 2000 and precise_lines == []
    assert {(x.path, x.type, x.rows) for x in d.drift} == {
        ("apr", "S->N", 2000), ("creditorName", "N->S", 2000), ("bureau.history", "L", 2000),
        ("hardshipSince", "S", 2000), ("riskScore", "N", 2000), ("scores", "NS", 2000), ("scan", "B", 2000)}
    assert d.rows.to_pylist() == decode_precise(text, entity("Debt"), FULL).rows.to_pylist()


def test_a_line_pyarrow_cannot_parse_costs_only_its_neighbourhood(monkeypatch, precise_lines):
    monkeypatch.setattr(dynamodb_json, "MIN_PIECE", 8 << 10)
    lines = [line(debt(i, riskScore={"N": str(i)})) for i in range(1, 3001)]
    lines[1500] = b'{"Item":{"id":{"S":"d-x"},"balance":{"N":1520.75}}}\n'  # a JSON number where text belongs
    d = decode_file(b"".join(lines), entity("Debt"), FULL)
    assert d.rows.num_rows == 2999
    assert [(q["_line"], q["_reason"]) for q in d.quarantine.to_pylist()] == [(1501, "n_not_string")]
    assert 1501 in precise_lines and len(precise_lines) < 100


# ---- streams and ION follow the same policy --------------------------------------------------

def test_stream_records_follow_the_same_policy():
    def record(image, keys=None):
        return {"eventName": "MODIFY", "dynamodb": {"ApproximateCreationDateTime": 1793491300, "SequenceNumber": "1",
                                                    "Keys": keys or {"id": image["id"]}, "NewImage": image}}
    records = [record(debt(1, riskScore={"N": "712"}, apr={"S": "7.5"})), record(debt(2, id={"S": ""})),
               record(debt(3), keys={"id": {"S": "d-4"}})]
    d = decode_stream(json.dumps({"Records": records}).encode(), entity("Debt"),
                      Source("agency-001", "s", "s/f", "STREAM", 0), "pipes")
    (row,) = d.rows.to_pylist()
    assert row["_extra"] == '{"riskScore":{"N":"712"}}' and row["apr"] == Decimal("7.5000")
    assert [q["_reason"] for q in d.quarantine.to_pylist()] == ["empty_key", "key_mismatch"]
    assert [(x.path, x.type, x.what) for x in d.drift] == [("apr", "S->N", "coerced"),
                                                          ("riskScore", "N", "new_attribute")]


def test_ion_lines_follow_the_same_policy():
    text = (b'$ion_1_0 {Item:{id:"d-1",consumerId:"c-1",bureau:{name:"TU",history:[{month:"2026-09"}]},'
            b'riskScore:712.}}\n{Item:{id:"",balance:1.5}}\n')
    d = decode_ion(text, entity("Debt"), FULL)
    (row,) = d.rows.to_pylist()
    assert json.loads(row["_extra"]) == {"bureau": {"M": {"history": {"L": [{"M": {"month": {"S": "2026-09"}}}]}}},
                                         "riskScore": {"N": "712"}}
    assert [q["_reason"] for q in d.quarantine.to_pylist()] == ["empty_key"]


def test_a_retired_attribute_is_no_longer_required(monkeypatch):
    """`retired` was read nowhere: an app version that stopped sending consumerId (declared required)
    had every item quarantined as missing_required (independent probe)."""
    from tenantlake import contracts

    debt_contract = entity("Debt")
    retired = tuple(dataclasses.replace(a, retired=True) if a.name == "consumerId" else a
                    for a in debt_contract.attributes)
    monkeypatch.setitem(contracts.ENTITIES, "Debt", dataclasses.replace(debt_contract, attributes=retired))
    assert not next(a for a in debt_contract.attributes if a.name == "consumerId").nullable  # required before
    d = both(line(debt(1, consumerId=None)) + line(debt(2)))
    assert d.rows["consumer_id"].to_pylist() == [None, "c-1"] and d.quarantine.num_rows == 0
