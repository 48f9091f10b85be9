"""Stream records (both envelopes) and ION exports reach the same rows as the ground truth says."""

import gzip
import json
import random
from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeDeserializer

from tenantlake.formats.manifest import ExportError
from tenantlake.ingest import ingest_export, ingest_stream_file
from tenantlake.lake import read_committed
from tenantlake.storage import LocalStore
from tenantlake_dev.simulate.exports import write_full_export
from tests.tenantlake.formats.kit import debt

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
def test_full_export_plus_stream_records_replay_to_ground_truth(fleet, tmp_path, registry, envelope, entity):
    out, _ = fleet
    landing, lake = LocalStore(out / "landing"), LocalStore(tmp_path / "lake")
    tenant = registry.tenant("agency-001")
    prefix = f"tenant=agency-001/table={entity}"
    full = [k for k in landing.list(prefix + "/AWSDynamoDB/") if k.endswith("manifest-summary.json")
            and json.loads(landing.get(k)).get("exportType") == "FULL_EXPORT"]
    ingest_export(landing, full[0], lake, tenant_id="agency-001", entity=entity, tenant=tenant, run_id="r")
    files = landing.list(f"{prefix}/streams/{envelope}/")
    assert files
    for key in files:
        r = ingest_stream_file(landing, key, lake, tenant_id="agency-001", entity=entity, envelope=envelope,
                               run_id="r")
        assert r.quarantined == 0 and r.rows == r.items
    rows = read_committed(lake, entity, "agency-001").to_pylist()
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
        landing, lake = LocalStore(tmp_path / fmt / "landing"), LocalStore(tmp_path / fmt / "lake")
        rec = write_full_export(landing, tenant, "Debt", items, 1793491200000000, random.Random(1), fmt)
        r = ingest_export(landing, rec.manifest_key, lake, tenant_id="agency-001", entity="Debt", tenant=tenant,
                          run_id="r")
        got = read_committed(lake, "Debt").to_pylist()
        rows[fmt] = [{k: v for k, v in row.items() if k not in ("_export_id", "_source_file")} for row in got]
        reasons[fmt] = r.quarantined
    assert rows["ION"] == rows["DYNAMODB_JSON"] and len(rows["ION"]) == 2
    assert reasons == {"DYNAMODB_JSON": 1, "ION": 1}
    extra = json.loads(rows["ION"][1]["_extra"])
    assert extra == {"blob": "AAE=", "ratio": "1E+3", "nums": ["1", "2.5"], "deep": [{"a": None}, True]}
    assert rows["ION"][0]["balance"] == Decimal("1520.75")


def test_firehose_record_cut_short_is_quarantined_and_the_rest_kept(tmp_path):
    rec = {"eventName": "INSERT", "dynamodb": {"ApproximateCreationDateTime": 1793491300000,
                                               "Keys": {"id": {"S": "d-1"}}, "NewImage": debt(1)}}
    text = json.dumps(rec) + json.dumps({**rec, "eventName": "EXPLODE"}) + '{"eventName": "INS'
    landing = LocalStore(tmp_path / "landing")
    landing.put("s/2026/11/01/00/f.gz", gzip.compress(text.encode()))
    r = ingest_stream_file(landing, "s/2026/11/01/00/f.gz", LocalStore(tmp_path / "lake"), tenant_id="agency-001",
                           entity="Debt", envelope="firehose", run_id="r")
    assert (r.items, r.rows, r.quarantined, r.export_date) == (3, 1, 2, "2026-11-01")


def test_unreadable_pipes_file_names_the_file(tmp_path):
    landing = LocalStore(tmp_path / "landing")
    landing.put("s/2026/11/01/00/bad.gz", gzip.compress(b"{not json"))
    with pytest.raises(ExportError, match=r"s/2026/11/01/00/bad.gz: not a readable pipes stream file"):
        ingest_stream_file(landing, "s/2026/11/01/00/bad.gz", LocalStore(tmp_path / "lake"), tenant_id="a",
                           entity="Debt", envelope="pipes", run_id="r")
