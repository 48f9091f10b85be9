"""Stream records (both envelopes) and ION exports reach the same rows as the ground truth says."""

import base64
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
             debt(3, balance={"N": "12.345"}),  # quarantined by both, for the same reason
             # past the Ion C reader's default 16 KiB buffer for one value, which refused them
             debt(4, note={"S": "\u00e9" * 100_000}, blob={"B": base64.b64encode(bytes(range(256)) * 240).decode()})]
    rows, reasons = {}, {}
    for fmt in ("DYNAMODB_JSON", "ION"):
        landing = LocalStore(tmp_path / fmt / "landing")
        rec = write_full_export(landing, tenant, "Debt", items, 1793491200000000, random.Random(1), fmt)
        got = decode_export(landing, "Debt", "agency-001", rec.manifest_key)
        rows[fmt] = sorted(({k: v for k, v in row.items() if k not in ("_export_id", "_source_file", "_line")}
                            for row in got.rows), key=lambda r: r["id"])
        reasons[fmt] = [q["_reason"] for q in got.quarantine]
    assert rows["ION"] == rows["DYNAMODB_JSON"] and len(rows["ION"]) == 3
    assert reasons == {"DYNAMODB_JSON": ["n_scale"], "ION": ["n_scale"]}
    extra = json.loads(rows["ION"][1]["_extra"])
    assert extra == {"blob": {"B": "AAE="}, "ratio": {"N": "1E+3"}, "nums": {"NS": ["1", "2.5"]},
                     "deep": {"L": [{"M": {"a": {"NULL": True}}}, {"BOOL": True}]}}
    assert rows["ION"][0]["balance"] == Decimal("1520.75")
    assert json.loads(rows["ION"][2]["_extra"]) == {"note": items[3]["note"], "blob": items[3]["blob"]}


STREAM = Source("agency-001", "stream-1", "s/2026/11/01/00/f.gz", "STREAM", 0)


def test_firehose_record_cut_short_is_quarantined_and_the_rest_kept():
    rec = {"eventName": "INSERT", "dynamodb": {"ApproximateCreationDateTime": 1793491300000,
                                               "Keys": {"id": {"S": "d-1"}}, "NewImage": debt(1)}}
    text = json.dumps(rec) + json.dumps({**rec, "eventName": "EXPLODE"}) + '{"eventName": "INS'
    d = decode_stream(text.encode(), contract("Debt"), STREAM, "firehose")
    assert (d.lines, d.rows.num_rows, d.quarantine.num_rows) == (3, 1, 2)
    assert d.quarantine["_reason"].to_pylist() == ["not_a_stream_record", "malformed_json"]


def test_unreadable_pipes_file_is_a_batch_error_and_an_empty_file_holds_no_records():
    """The caller (ingest) sets an unreadable file aside whole (test_sync)."""
    with pytest.raises(ValueError):
        decode_stream(b"{not json", contract("Debt"), STREAM, "pipes")
    for envelope in ("pipes", "firehose"):
        d = decode_stream(b"", contract("Debt"), STREAM, envelope)
        assert (d.lines, d.rows.num_rows, d.quarantine.num_rows) == (0, 0, 0)


@pytest.mark.parametrize(("sent", "reason"), [
    ("NaN", "missing_timestamp"), ("Infinity", "missing_timestamp"), ("1e400", "missing_timestamp"),
    ("99999999999999999999999", "timestamp_out_of_range"),
])
def test_a_creation_time_that_is_no_time_costs_only_its_record(sent, reason):
    """Python's JSON reader takes NaN, Infinity and 1e400 (as inf); a huge integer is past year 9999."""
    bad = _firehose(2).replace('"ApproximateCreationDateTime": 1793491300002', f'"ApproximateCreationDateTime": {sent}')
    assert bad != _firehose(2)
    d = decode_stream("\n".join([_firehose(1), bad, _firehose(3)]).encode(), contract("Debt"), STREAM, "firehose")
    assert d.rows["id"].to_pylist() == ["d-1", "d-3"]
    assert [(q["_line"], q["_reason"]) for q in d.quarantine.to_pylist()] == [(2, reason)]


def test_a_firehose_file_cut_inside_a_character_or_nested_too_deep_costs_only_that_record():
    cut = _firehose(3, note={"S": "caf\u00e9"}).encode().replace(b"\\u00e9", "é".encode())
    cut = cut[:cut.index("é".encode()) + 1]  # the last record, cut between the two bytes of é
    deep = '{"eventName": "INSERT", "dynamodb": ' + "[" * 100_000 + "]" * 100_000 + "}"
    latin1 = _firehose(4, note={"S": "caf\u00e9"}).encode().replace(b"\\u00e9", "é".encode("latin-1"))
    text = ("\n".join([_firehose(1), deep, _firehose(2)]) + "\n").encode() + latin1 + b"\n" + cut
    d = decode_stream(text, contract("Debt"), STREAM, "firehose")
    assert d.rows["id"].to_pylist() == ["d-1", "d-2"]
    assert [(q["_line"], q["_reason"]) for q in d.quarantine.to_pylist()] == [
        (2, "nesting_too_deep"), (4, "invalid_utf8"), (5, "malformed_json")]
    assert d.quarantine["_raw"].to_pylist()[1:] == [latin1, cut]  # kept byte for byte, half a character too


def _firehose(i: int, event: str = "INSERT", **more) -> str:
    return json.dumps({"eventName": event, "tableName": "Debt-abc-prod", **more,
                       "dynamodb": {"ApproximateCreationDateTime": 1793491300000 + i,
                                    "Keys": {"id": {"S": f"d-{i}"}}, "NewImage": debt(i)}})


@pytest.mark.parametrize("delimiter", ["\n", ""])
def test_a_broken_firehose_record_costs_only_itself(delimiter):
    """Newline-delimited or concatenated, reading goes on after the broken record; its text is
    quarantined whole, as sent."""
    broken = _firehose(2)[:-40]
    text = delimiter.join([_firehose(1), broken, *(_firehose(i) for i in range(3, 9))]) + delimiter
    d = decode_stream(text.encode(), contract("Debt"), STREAM, "firehose")
    assert sorted(d.rows["id"].to_pylist()) == ["d-1", *(f"d-{i}" for i in range(3, 9))]
    assert d.lines == 8 and d.quarantine["_reason"].to_pylist() == ["malformed_json"]
    assert d.quarantine["_raw"].to_pylist() == [broken.encode()] and d.quarantine["_line"].to_pylist() == [2]


TABLE = "arn:aws:dynamodb:us-east-1:111122223333:table/Debt-abc-prod"


def _pipes(i: int, arn: str, event: str = "INSERT", **body) -> dict:
    return {"eventName": event, "eventSourceARN": arn,
            "dynamodb": {"ApproximateCreationDateTime": 1793491300, "SequenceNumber": f"{i:021d}",
                         "Keys": {"id": {"S": f"d-{i}"}}, "NewImage": debt(i), **body}}


def test_records_of_another_table_or_account_are_quarantined_not_published():
    """One Kinesis stream can carry several tables, and a misrouted Pipes target another account's."""
    records = [_pipes(1, TABLE + "/stream/2026-11-01T00:00:00.000"),
               _pipes(2, "arn:aws:dynamodb:us-east-1:299999999999:table/Debt-abc-prod/stream/2026-11-01T00:00:00.000"),
               _pipes(3, "arn:aws:dynamodb:us-east-1:111122223333:table/Debt-abc-dev/stream/2026-11-01T00:00:00.000"),
               _pipes(4, "arn:aws:dynamodb:eu-west-1:111122223333:table/Debt-abc-prod/stream/2026-11-01T00:00:00.000")]
    d = decode_stream(json.dumps({"Records": records}).encode(), contract("Debt"), STREAM, "pipes", TABLE)
    assert d.rows["id"].to_pylist() == ["d-1", "d-4"]  # a global table's replica in another region is the table
    assert dict(zip(d.quarantine["_line"].to_pylist(), d.quarantine["_reason"].to_pylist(), strict=True)) == {
        2: "tenant_mismatch", 3: "wrong_table"}
    text = "\n".join([_firehose(1), _firehose(2, tableName="Debt-abc-dev")])
    d = decode_stream(text.encode(), contract("Debt"), STREAM, "firehose", TABLE)
    assert d.rows["id"].to_pylist() == ["d-1"] and d.quarantine["_reason"].to_pylist() == ["wrong_table"]


def test_a_change_without_its_new_image_is_quarantined_as_missing_image():
    records = [_pipes(1, TABLE + "/stream/x", "MODIFY", NewImage=None, StreamViewType="KEYS_ONLY"),
               _pipes(2, TABLE + "/stream/x", "INSERT", NewImage=None, OldImage=debt(2)),
               _pipes(3, TABLE + "/stream/x", "REMOVE", NewImage=None)]  # a delete needs only its key
    for r in records:
        del r["dynamodb"]["NewImage"]
    d = decode_stream(json.dumps(records).encode(), contract("Debt"), STREAM, "pipes", TABLE)
    assert d.rows["id"].to_pylist() == ["d-3"] and d.rows["_op"].to_pylist() == ["remove"]
    assert d.quarantine["_reason"].to_pylist() == ["missing_image", "missing_image"]
    assert "KEYS_ONLY" in d.quarantine["_detail"][0].as_py()


def test_in_a_file_whose_times_carry_fractions_a_whole_second_is_exact():
    """JSON writers print 1793491300.0 as 1793491300: beside X.25 in the same file it is X.0, and
    read as X.999999 it outranked the later change (probe: the lake kept the older value)."""
    first, second = _pipes(1, TABLE + "/stream/x"), _pipes(1, TABLE + "/stream/x", "MODIFY")
    second["dynamodb"]["SequenceNumber"] = f"{2:021d}"
    second["dynamodb"]["ApproximateCreationDateTime"] = 1793491300.25
    d = decode_stream(json.dumps([first, second]).encode(), contract("Debt"), STREAM, "pipes", TABLE)
    assert [t.isoformat() for t in d.rows["_event_ts"].to_pylist()] == [
        "2026-11-01T00:01:40+00:00", "2026-11-01T00:01:40.250000+00:00"]


def test_a_time_in_whole_seconds_is_the_last_microsecond_of_its_second():
    """So a FULL export taken in the same second (at .500) never wins over the change. A time with a
    fraction is taken as it is."""
    whole, fraction = _pipes(1, TABLE + "/stream/x"), _pipes(2, TABLE + "/stream/x")
    fraction["dynamodb"]["ApproximateCreationDateTime"] = 1793491300.25
    files = [decode_stream(json.dumps([r]).encode(), contract("Debt"), STREAM, "pipes", TABLE) for r in (whole, fraction)]
    times = [d.rows["_event_ts"][0].as_py().isoformat() for d in files]
    assert times == ["2026-11-01T00:01:40.999999+00:00", "2026-11-01T00:01:40.250000+00:00"]


def test_a_record_that_names_neither_its_table_nor_its_stream_is_quarantined_as_unknown_source():
    """Streams records carry eventSourceARN and Kinesis ones tableName: without either, the record
    could be any table's, so it is set aside, not published as the tenant's."""
    anonymous = _pipes(2, TABLE + "/stream/x")
    del anonymous["eventSourceARN"]
    d = decode_stream(json.dumps([_pipes(1, TABLE + "/stream/x"), anonymous]).encode(), contract("Debt"), STREAM,
                      "pipes", TABLE)
    assert d.rows["id"].to_pylist() == ["d-1"]
    assert [(q["_line"], q["_reason"]) for q in d.quarantine.to_pylist()] == [(2, "unknown_source")]
    assert json.loads(d.quarantine["_raw"][0].as_py()) == anonymous  # the record as sent
    d = decode_stream(json.dumps([anonymous]).encode(), contract("Debt"), STREAM, "pipes")
    assert d.rows["id"].to_pylist() == ["d-2"]  # no tenant's table to check against (convert): read as it is


@pytest.mark.parametrize("envelope", ["pipes", "firehose"])
def test_a_byte_order_mark_at_the_start_of_a_file_is_not_a_record(envelope):
    bom = "\ufeff".encode()
    if envelope == "pipes":
        text = bom + json.dumps({"Records": [_pipes(1, TABLE + "/stream/x"), _pipes(2, TABLE + "/stream/x")]}).encode()
    else:
        text = bom + "\n".join([_firehose(1), _firehose(2)]).encode()
    d = decode_stream(text, contract("Debt"), STREAM, envelope, TABLE)
    assert d.rows["id"].to_pylist() == ["d-1", "d-2"] and d.rows["_line"].to_pylist() == [1, 2]
    assert d.quarantine.num_rows == 0 and d.lines == 2


def test_a_lone_surrogate_or_a_huge_number_costs_only_its_record_in_either_envelope():
    """Python's parser reads "\\ud800" (half a UTF-16 pair) and orjson refuses it; neither it nor an
    integer past Python's 4,300 digits may stop the file (a stuck table) or the rest of a Pipes batch."""
    def firehose(i, **attributes):
        record = json.loads(_firehose(i))
        record["dynamodb"]["NewImage"].update(attributes)
        return record

    lone = [firehose(2, note={"S": "\ud800"}), firehose(3, **{"\udc80": {"S": "x"}})]
    keys = firehose(4)
    keys["dynamodb"]["Keys"]["id"]["S"] = "\ud800"
    huge = firehose(5)
    huge["dynamodb"]["ApproximateCreationDateTime"] = 10 ** 5000
    pair = firehose(6, note={"S": "\U0001f600"})  # an emoji: a surrogate pair, which is fine
    records = [firehose(1), *lone, keys, huge, pair, firehose(7)]
    import sys
    sys.set_int_max_str_digits(0)  # to write the huge number; reading it stays at the default limit
    try:
        text = "\n".join(json.dumps(r) for r in records).encode()  # ASCII: \ud800 as sent, escaped
    finally:
        sys.set_int_max_str_digits(4300)
    d = decode_stream(text, contract("Debt"), STREAM, "firehose")
    assert d.rows["id"].to_pylist() == ["d-1", "d-6", "d-7"] and d.lines == 7
    assert d.rows["_extra"][1].as_py() == '{"note":{"S":"\U0001f600"}}'
    assert [(q["_line"], q["_reason"]) for q in d.quarantine.to_pylist()] == [
        (2, "malformed_json"), (3, "malformed_json"), (4, "malformed_json"), (5, "malformed_json")]
    assert "surrogate" in d.quarantine["_detail"][0].as_py() and "digits" in d.quarantine["_detail"][3].as_py()
    assert d.quarantine["_raw"][0].as_py() == json.dumps(lone[0]).encode()  # as sent

    batch = [_pipes(1, TABLE + "/stream/x"), _pipes(2, TABLE + "/stream/x"), _pipes(3, TABLE + "/stream/x")]
    batch[1]["dynamodb"]["NewImage"]["note"] = {"S": "\ud800"}
    d = decode_stream(json.dumps({"Records": batch}).encode(), contract("Debt"), STREAM, "pipes", TABLE)
    assert d.rows["id"].to_pylist() == ["d-1", "d-3"]
    assert [(q["_line"], q["_reason"]) for q in d.quarantine.to_pylist()] == [(2, "malformed_json")]
    assert json.loads(d.quarantine["_raw"][0].as_py()) == batch[1]  # every character kept, escaped


def test_a_modify_whose_old_image_is_of_another_item_is_quarantined_as_key_mismatch():
    other = _pipes(2, TABLE + "/stream/x", "MODIFY", OldImage=debt(3))
    keyless = _pipes(4, TABLE + "/stream/x", "MODIFY", OldImage=debt(4, id=None))
    same = _pipes(5, TABLE + "/stream/x", "MODIFY", OldImage=debt(5, balance={"N": "1.00"}))
    d = decode_stream(json.dumps([other, keyless, same]).encode(), contract("Debt"), STREAM, "pipes", TABLE)
    assert d.rows["id"].to_pylist() == ["d-5"]
    assert [(q["_line"], q["_reason"]) for q in d.quarantine.to_pylist()] == [(1, "key_mismatch"), (2, "key_mismatch")]


def test_the_tail_of_a_cut_record_at_the_start_of_a_file_is_one_quarantine_row():
    """A Firehose file can begin with the rest of a record cut at the end of the one before. Its
    first pieces may read as JSON values (`3`, then `", "`): they are one piece, set aside whole."""
    whole = _firehose(1)
    tail = whole[whole.index('"Keys"') - 3:]  # starts `0, "Keys": ...`
    tail = '3", "' + tail
    text = (tail + _firehose(2) + _firehose(3)).encode()  # concatenated, no delimiter
    d = decode_stream(text, contract("Debt"), STREAM, "firehose")
    assert d.rows["id"].to_pylist() == ["d-2", "d-3"] and d.lines == 3
    assert [(q["_line"], q["_raw"]) for q in d.quarantine.to_pylist()] == [(1, tail.encode())]


@pytest.mark.parametrize("layout", ["records", "array", "other members first"])
def test_a_pipes_record_set_aside_keeps_its_bytes_as_sent(layout):
    """orjson would write 1.79349130E9 as 1793491300.0, unescape \\u00eb and drop the spacing."""
    good = json.dumps(_pipes(1, TABLE + "/stream/x"))
    bad = json.dumps(_pipes(2, TABLE + "/stream/x", "EXPLODE")).replace(
        "1793491300", "1.79349130E9").replace('"d-2"', '"d-\\u00eb2"').replace(", ", " ,  ")
    records = f"[ {good} ,\n  {bad} ]"
    text = {"records": f'{{"Records": {records}}}', "array": records,
            "other members first": f'{{"batch": {{"Records": [1]}}, "n": [2, {{"x": "]"}}], "Records": {records}}}'}[layout]
    d = decode_stream(text.encode(), contract("Debt"), STREAM, "pipes", TABLE)
    assert d.rows["id"].to_pylist() == ["d-1"]
    assert [(q["_line"], q["_reason"], q["_raw"]) for q in d.quarantine.to_pylist()] == [
        (2, "not_a_stream_record", bad.encode())]


@pytest.mark.parametrize("between", ["\n", "", "\n\n  "])
def test_a_pipes_file_of_batches_appended_one_after_another_publishes_every_batch(between):
    """A writer that appends each batch it receives leaves several documents in one file (a line
    each, or back to back): all of them are read, where the file was set aside whole (probe). A
    batch that does not read costs only itself, up to the next line a batch reads from."""
    arn = TABLE + "/stream/x"
    first = json.dumps({"Records": [_pipes(1, arn), _pipes(2, arn)]})
    second = json.dumps([_pipes(3, arn), _pipes(4, arn, "EXPLODE")]).replace(", ", ",  ")  # not orjson's spacing
    alone = json.dumps(_pipes(5, arn))  # a record written on its own
    broken = '{"Records": [{"eventName": "INSERT", "dynam'
    text = between.join([first, second, alone]) + "\n" + broken + "\n" + json.dumps({"Records": [_pipes(6, arn)]})
    d = decode_stream(text.encode(), contract("Debt"), STREAM, "pipes", TABLE)
    assert d.rows["id"].to_pylist() == ["d-1", "d-2", "d-3", "d-5", "d-6"] and d.lines == 7
    explode = json.dumps(_pipes(4, arn, "EXPLODE")).replace(", ", ",  ")
    assert [(q["_line"], q["_reason"], q["_raw"]) for q in d.quarantine.to_pylist()] == [
        (4, "not_a_stream_record", explode.encode()), (6, "malformed_json", broken.encode())]


def test_a_pipes_file_that_is_one_broken_batch_or_no_batch_is_still_set_aside_whole():
    for text in (b'{"Records": [{"eventName": "INSERT"', b'{"Records": 3}', b"[1, 2", b'"text"'):
        with pytest.raises(ValueError):
            decode_stream(text, contract("Debt"), STREAM, "pipes")


def test_a_stream_file_of_several_gzip_members_is_read_whole():
    """`cat a.gz b.gz`, or a writer appending gzipped batches, is one valid gzip file of two members:
    zlib alone stopped after the first and the second's records were lost without a word (probe)."""
    from tenantlake.formats.streams import UnreadableFile, readable_text, stream_text

    first, second = (_firehose(1) + "\n").encode(), (_firehose(2) + "\n" + _firehose(3) + "\n").encode() * 2000
    body = gzip.compress(first) + gzip.compress(second)
    assert stream_text(body) == gzip.decompress(body) == first + second
    with pytest.raises(UnreadableFile, match="ends inside"):
        stream_text(body[:-20])
    assert readable_text(body[:-20]).startswith(first + second[:1000])  # what inflates is kept


def test_a_record_delivered_twice_in_one_file_counts_once():
    """Kinesis delivers at least once, and a Firehose record has no SequenceNumber: a redelivered
    INSERT after a MODIFY of the same millisecond ranked as the newer change (independent probe)."""
    insert = json.loads(_firehose(30))
    modify = {**insert, "eventName": "MODIFY", "eventID": "e-2"}
    insert["eventID"] = "e-1"
    text = "\n".join(json.dumps(r) for r in (insert, modify, insert)).encode()
    d = decode_stream(text, contract("Debt"), STREAM, "firehose")
    assert d.rows["_op"].to_pylist() == ["insert", "modify"] and d.lines == 3
    assert [(q["_line"], q["_reason"]) for q in d.quarantine.to_pylist()] == [(3, "duplicate_delivery")]
