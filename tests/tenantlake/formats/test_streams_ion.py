"""Stream records (both envelopes) and ION exports reach the same rows as the ground truth says."""

import gzip
import json
import random
from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeDeserializer

from tenantlake.contracts import entity as contract
from tenantlake.formats.dynamodb_json import Source
from tenantlake.formats.streams import decode_stream
from tenantlake.storage import LocalStore
from tenantlake_dev.simulate.exports import write_full_export
from tests.tenantlake.formats.kit import debt, decode_export

deser = TypeDeserializer()


def latest(rows, tiebreak):
    """Latest-wins by event time (an independent, test-side replay); removes delete."""
    state = {}
    for r in sorted(rows, key=lambda r: (r["_event_ts"], tiebreak(r))):
        if r["_op"] == "remove":
            state.pop(r["id"], None)
        else:
            state[r["id"]] = r
    return state


def truth(out, tenant, entity):
    lines = gzip.decompress((out / "truth" / tenant / f"{entity}.jsonl.gz").read_bytes()).splitlines()
    return {i["id"]["S"]: {k: deser.deserialize(v) for k, v in i.items()} for i in map(json.loads, lines)}


@pytest.mark.parametrize("envelope", ["pipes", "firehose"])
@pytest.mark.parametrize("entity", ["Debt", "Payment", "Expense"])
def test_full_export_plus_stream_records_replay_to_ground_truth(fleet, envelope, entity):
    out, _ = fleet
    landing = LocalStore(out / "landing")
    prefix = f"tenant=agency-001/table={entity}"
    full = [k for k in landing.list(prefix + "/AWSDynamoDB/") if k.endswith("manifest-summary.json")
            and json.loads(landing.get(k)).get("exportType") == "FULL_EXPORT"]
    rows = decode_export(landing, entity, "agency-001", full[0]).rows
    files = landing.list(f"{prefix}/streams/{envelope}/")
    assert files
    for key in files:
        d = decode_stream(gzip.decompress(landing.get(key)), contract(entity),
                          Source("agency-001", key, key, "STREAM", 0), envelope)
        assert d.quarantine.num_rows == 0 and d.rows.num_rows == d.lines
        rows += d.rows.to_pylist()
    if envelope == "pipes":
        assert all(r["_sequence"] and len(r["_sequence"]) == 40 for r in rows if r["_op"] != "snapshot")
    state = latest(rows, lambda r: (r["_sequence"] or "", r["_line"]))
    expected = truth(out, "agency-001", entity)
    assert state.keys() == expected.keys()
    money = {"Debt": ("balance", "balance"), "Payment": ("amount", "amount"),
             "Expense": ("monthly_amount", "monthlyAmount")}[entity]
    for key, item in expected.items():
        assert state[key]["ddb_version"] == item["_version"]
        assert state[key][money[0]] == item[money[1]]


def test_ion_and_json_exports_of_the_same_items_give_the_same_rows(tmp_path, registry):
    tenant = registry.tenant("agency-001")
    items = [debt(1), debt(2, tags={"SS": ["x"]}, blob={"B": "AAE="}, ratio={"N": "1E+3"},
                      nums={"NS": ["1", "2.5"]}, deep={"L": [{"M": {"a": {"NULL": True}}}, {"BOOL": True}]}),
             debt(3, balance={"N": "12.345"})]  # quarantined by both, for the same reason
    rows, reasons = {}, {}
    for fmt in ("DYNAMODB_JSON", "ION"):
        landing = LocalStore(tmp_path / fmt / "landing")
        rec = write_full_export(landing, tenant, "Debt", items, 1793491200000000, random.Random(1), fmt)
        got = decode_export(landing, "Debt", "agency-001", rec.manifest_key)
        rows[fmt] = sorted(({k: v for k, v in row.items() if k not in ("_export_id", "_source_file", "_line")}
                            for row in got.rows), key=lambda r: r["id"])
        reasons[fmt] = [q["_reason"] for q in got.quarantine]
    assert rows["ION"] == rows["DYNAMODB_JSON"] and len(rows["ION"]) == 2
    assert reasons == {"DYNAMODB_JSON": ["n_scale"], "ION": ["n_scale"]}
    extra = json.loads(rows["ION"][1]["_extra"])
    assert extra == {"blob": {"B": "AAE="}, "ratio": {"N": "1E+3"}, "nums": {"NS": ["1", "2.5"]},
                     "deep": {"L": [{"M": {"a": {"NULL": True}}}, {"BOOL": True}]}}
    assert rows["ION"][0]["balance"] == Decimal("1520.75")


STREAM = Source("agency-001", "stream-1", "s/2026/11/01/00/f.gz", "STREAM", 0)


def test_firehose_record_cut_short_is_quarantined_and_the_rest_kept():
    rec = {"eventName": "INSERT", "dynamodb": {"ApproximateCreationDateTime": 1793491300000,
                                               "Keys": {"id": {"S": "d-1"}}, "NewImage": debt(1)}}
    text = json.dumps(rec) + json.dumps({**rec, "eventName": "EXPLODE"}) + '{"eventName": "INS'
    d = decode_stream(text.encode(), contract("Debt"), STREAM, "firehose")
    assert (d.lines, d.rows.num_rows, d.quarantine.num_rows) == (3, 1, 2)
    assert d.quarantine["_reason"].to_pylist() == ["not_a_stream_record", "malformed_json"]


def test_unreadable_pipes_file_is_a_batch_error():
    """The caller (ingest) turns it into an ExportError naming the file."""
    with pytest.raises(ValueError):
        decode_stream(b"{not json", contract("Debt"), STREAM, "pipes")
