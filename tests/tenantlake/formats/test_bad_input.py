"""Every bad input ends in a clear batch error or a quarantine row with a reason: never silent loss."""

import gzip
import json
import random
import re

import pytest

from tenantlake.formats import manifest
from tenantlake.formats.manifest import ExportError, check_tenant, read_export
from tests.tenantlake.formats.kit import SUMMARY, debt, decode_export, line, write_export


@pytest.fixture
def run(registry):
    """Verify and decode the export in `store` as ingest does; returns (rows, quarantine rows)."""
    def go(store, entity="Debt", tenant="agency-001"):
        check_tenant(read_export(store, SUMMARY), registry.tenant("agency-001"), entity)
        r = decode_export(store, entity, tenant)
        assert len(r.rows) + len(r.quarantine) == sum(r.lines)  # nothing silently lost
        return r.rows, r.quarantine
    return go


def good(n=3) -> bytes:
    return b"".join(line(debt(i)) for i in range(1, n + 1))


def only_reasons(quarantine):
    return [(q["_line"], q["_reason"]) for q in quarantine]


# ---- the whole batch stops --------------------------------------------------------------------

def test_truncated_gzip(tmp_path, run):
    body = gzip.compress(good(), mtime=0)
    store = write_export(tmp_path / "landing", [good()], gz=[body[: len(body) // 2]])
    with pytest.raises(ExportError, match=r"data/file0.json.gz: not a valid gzip file"):
        run(store)


def test_bad_crc(tmp_path, run):
    body = bytearray(gzip.compress(good(), mtime=0))
    body[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    store = write_export(tmp_path / "landing", [good()], gz=[bytes(body)])
    with pytest.raises(ExportError, match=r"file0.json.gz: not a valid gzip file \(.*(?i:incorrect (data check|checksum))"):
        run(store)


def test_md5_mismatch(tmp_path, run):
    store = write_export(tmp_path / "landing", [good()], md5s=["sQMSpEILNgoQmarvDFonGQ=="])
    with pytest.raises(ExportError, match=r"file0.json.gz: MD5 .* does not match the manifest's sQMSpEILNgoQmarvDFonGQ=="):
        run(store)


def test_item_lines_are_counted_for_the_callers_check_against_the_manifest(tmp_path):
    """Ingest refuses a file whose item lines differ from the manifest's itemCount; the decoder's
    part is to count item lines (not blank ones) whatever became of them."""
    text = good(2) + b"\n" + line(debt(3, balance={"N": "1.234"}))
    store = write_export(tmp_path / "landing", [text], counts=[4])
    assert read_export(store, SUMMARY).files[0].item_count == 4
    assert decode_export(store).lines == [3]


def test_summary_total_mismatch(tmp_path, run):
    store = write_export(tmp_path / "landing", [good(3)], summary_count=5)
    with pytest.raises(ExportError, match=r"manifest-summary.json: itemCount 5 but the manifest lists 3 items"):
        run(store)


def test_listed_file_missing(tmp_path, run):
    store = write_export(tmp_path / "landing", [good(2), good(1)], missing=(1,))
    with pytest.raises(ExportError, match=r"file1.json.gz: listed in the manifest but missing"):
        run(store)


def test_only_started_present(tmp_path, run):
    store = write_export(tmp_path / "landing", [good()])
    store.path(SUMMARY).unlink()
    with pytest.raises(ExportError, match=r"export not complete: only _started is present"):
        run(store)


def test_summary_from_another_account(tmp_path, run):
    arn = "arn:aws:dynamodb:us-east-1:999999999999:table/Debt-k3j2h5-prod"
    store = write_export(tmp_path / "landing", [good()], table_arn=arn)
    with pytest.raises(ExportError, match=r"from account 999999999999, not tenant agency-001's account 211111111111"):
        run(store)


def test_summary_of_another_table(tmp_path, run):
    arn = "arn:aws:dynamodb:us-east-1:211111111111:table/Plan-k3j2h5-prod"
    store = write_export(tmp_path / "landing", [good()], table_arn=arn)
    with pytest.raises(ExportError, match=r"of table Plan-k3j2h5-prod, not agency-001's Debt table Debt-k3j2h5-prod"):
        run(store)


def test_malformed_summary_names_the_file(tmp_path, run):
    store = write_export(tmp_path / "landing", [good()])
    store.put(SUMMARY, b"{not json")
    with pytest.raises(ExportError, match=r"manifest-summary.json: not valid JSON"):
        run(store)


def _edit(store, key, change):
    """Rewrite one JSON document (or each line of a JSON-lines file) of the export with `change`."""
    text = store.get(key)
    if key.endswith("manifest-files.json"):
        docs = [json.loads(x) for x in text.splitlines()]
        change(docs)
        store.put(key, b"".join(json.dumps(d).encode() + b"\n" for d in docs))
    else:
        doc = json.loads(text)
        change(doc)
        store.put(key, json.dumps(doc).encode())


FILES = SUMMARY.replace("manifest-summary.json", "manifest-files.json")


@pytest.mark.parametrize("where", ["tenant=agency-002/table=Debt/AWSDynamoDB/01793491200000-0badf00d/data/x.json.gz",
                                   "tenant=agency-001/table=Debt/AWSDynamoDB/../../../outside.json.gz",
                                   "../outside.json.gz"])
def test_a_manifest_naming_a_file_outside_its_export_is_refused_before_the_file_is_read(tmp_path, run, where):
    """Another tenant's file, listed with its right MD5, must not be published as this tenant's rows,
    nor its MD5 or line count told in an error (that would help forge a manifest for it)."""
    store = write_export(tmp_path / "landing", [good(1)])
    other = gzip.compress(line(debt(9)), mtime=0)
    target = tmp_path / "landing" / where
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(other)
    import base64
    import hashlib
    md5 = base64.b64encode(hashlib.md5(other).digest()).decode()

    def add(docs):
        docs.append({"itemCount": 1, "md5Checksum": md5, "etag": "x", "dataFileS3Key": where})
    _edit(store, FILES, add)
    _edit(store, SUMMARY, lambda d: d.update(itemCount=2))
    with pytest.raises(ExportError, match="outside the export's folder") as e:
        run(store)
    assert md5 not in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(("key", "field", "value", "says"), [
    (SUMMARY, "itemCount", None, "itemCount is 'None', not a count"),
    (SUMMARY, "itemCount", "one", "itemCount is 'one', not a count"),
    (SUMMARY, "itemCount", 1.5, "itemCount is '1.5', not a count"),
    (SUMMARY, "tableArn", "Debt-k3j2h5-prod", "is not a DynamoDB table ARN"),
    (SUMMARY, "exportArn", 12, "exportArn is '12', not text"),
    (SUMMARY, "manifestFilesS3Key", None, "manifestFilesS3Key is 'None', not text"),
    (SUMMARY, "exportTime", "2026-11-01T00:00:00", "has no time zone"),
    (SUMMARY, "exportTime", "2026-11-01", "has no time zone"),
    (FILES, "dataFileS3Key", None, "must be text"),
    (FILES, "itemCount", 1.9, "itemCount is '1.9', not a count"),
])
def test_a_manifest_field_of_the_wrong_type_is_one_clear_error(tmp_path, run, key, field, value, says):
    """Never a traceback, and never a guess: int() would read 1.9 items as 1, and a time without a
    zone would be read in the worker's own zone (the batch's day moving with the machine)."""
    store = write_export(tmp_path / "landing", [good(1)])
    _edit(store, key, lambda d: [x.update({field: value}) for x in d] if isinstance(d, list) else d.update({field: value}))
    with pytest.raises(ExportError, match=re.escape(says)) as e:
        run(store)
    assert key.rsplit("/", 1)[-1] in str(e.value)


def test_a_data_file_listed_twice_is_refused(tmp_path, run):
    """Read twice, its items would be counted twice and each quarantined as its own duplicate."""
    store = write_export(tmp_path / "landing", [good(2)])
    _edit(store, FILES, lambda docs: docs.append(dict(docs[0])))
    _edit(store, SUMMARY, lambda d: d.update(itemCount=4))
    with pytest.raises(ExportError, match=r"manifest-files.json line 2: .*data/file0.json.gz is listed twice"):
        run(store)


# ---- files that hold nothing ------------------------------------------------------------------

def test_zero_byte_and_empty_gzip_files_hold_no_items(tmp_path, run):
    store = write_export(tmp_path / "landing", [b"", b"", good(2)], gz=[b"", gzip.compress(b""), gzip.compress(good(2))])
    rows, quarantine = run(store)
    assert len(rows) == 2 and quarantine == []


def test_zero_byte_file_that_should_hold_items_counts_none(tmp_path):
    store = write_export(tmp_path / "landing", [b""], gz=[b""], counts=[2])
    assert decode_export(store).lines == [0]


# ---- line-level problems: the line goes aside, the rest is published ----------------------------

def test_crlf_and_blank_lines_keep_true_line_numbers(tmp_path, run):
    text = line(debt(1)).replace(b"\n", b"\r\n") + b"\n" + line(debt(2)).replace(b"\n", b"\r\n") + b"\r\n"
    rows, quarantine = run(write_export(tmp_path / "landing", [text]))
    assert [(r["id"], r["_line"]) for r in rows] == [("d-1", 1), ("d-2", 3)]
    assert quarantine == []


@pytest.mark.parametrize(("bad_line", "reason", "detail"), [
    (b'{"Item":{"id":{"S":"d-9"}', "malformed_json", "not valid JSON"),
    (line(debt(9, balance={"X": "1"})), "unknown_type", "unknown type key 'X'"),
    (line(debt(9, creditorName={"s": "Chase"})), "unknown_type", "type keys are upper case: S"),
    (line(debt(9, balance={"N": "1", "S": "1"})), "two_type_keys", "one type key expected"),
    (line(debt(9, note={"N": "1", "S": "1"})), "two_type_keys", "attribute 'note'"),
    (line(debt(9, balance={"N": "1" * 39})), "n_precision", "more than 38 significant digits"),
    (line(debt(9, balance={"N": "1E+126"})), "n_range", "outside DynamoDB's range"),
    (line(debt(9, balance={"N": "12.345"})), "n_scale", "more than 2 decimal places"),
    (line(debt(9, balance={"N": "1" * 20})), "n_overflow", "does not fit decimal(18,2)"),
    (line(debt(9, balance={"N": 1520.75})), "n_not_string", "N must be a string"),
    (line(debt(9, scan={"B": "not base64!"})), "b_invalid", "not valid base64"),
    (line(debt(9, tags={"SS": []})), "empty_set", "SS is empty"),
    (line(debt(9, tags={"SS": ["a", "a"]})), "duplicate_in_set", "duplicate"),
    (line(debt(9, balance={"S": "1520.75x"})), "type_mismatch", "attribute 'balance': expected N, got S '1520.75x'"),
    (line(debt(9, status=None, consumerId={"NULL": True})), "missing_required", "'consumerId'"),
    (line(debt(9, createdAt={"S": "yesterday"})), "timestamp_invalid", "not ISO-8601"),
    (line(debt(9, createdAt={"S": "0001-01-01T00:00:00+01:00"})), "timestamp_out_of_range", "outside years 1 to 9999"),
    (line(debt(9, updatedAt={"S": "9999-12-31T23:59:59-01:00"})), "timestamp_out_of_range", "outside years 1 to 9999"),
    (line(debt(9, _lastChangedAt={"N": "1763623714000000"})), "timestamp_out_of_range", "microseconds sent for"),
    (line(debt(9, _lastChangedAt={"N": "-62135596800001"})), "timestamp_out_of_range", "outside years 1 to 9999"),
    (line(debt(9, tenantId={"S": "agency-002"})), "tenant_mismatch", "exported from tenant 'agency-001'"),
    (line(debt(9, bureau={"S": "EQUIFAX"})), "type_mismatch", "attribute 'bureau': expected M, got S 'EQUIFAX'"),
    (b'{"Item":{"id":{"S":"d-9"},"creditorName":{"S":"\xff\xfe"}}}\n', "invalid_utf8", "invalid UTF-8"),
    (b'{"Itm":{"id":{"S":"d-9"}}}\n', "not_an_export_line", "full-export line"),
])
def test_bad_line_is_quarantined_with_its_reason(tmp_path, run, bad_line, reason, detail):
    text = line(debt(1)) + bad_line.rstrip(b"\n") + b"\n" + line(debt(2))
    rows, quarantine = run(write_export(tmp_path / "landing", [text]))
    assert [r["id"] for r in rows] == ["d-1", "d-2"]
    assert only_reasons(quarantine) == [(2, reason)]
    assert detail in quarantine[0]["_detail"]
    assert quarantine[0]["_raw"] == bad_line.rstrip(b"\n")  # kept byte for byte
    assert quarantine[0]["tenant_id"] == "agency-001"


def nested(depth: int) -> dict:
    value = {"S": "bottom"}
    for _ in range(depth - 1):
        value = {"M": {"k": value}}
    return value


def test_32_levels_of_nesting_pass_and_33_do_not(tmp_path, run):
    text = line(debt(1, deep=nested(32))) + line(debt(2, deep=nested(33)))
    rows, quarantine = run(write_export(tmp_path / "landing", [text]))
    assert [r["id"] for r in rows] == ["d-1"]
    assert '"bottom"' in rows[0]["_extra"]
    assert only_reasons(quarantine) == [(2, "nesting_too_deep")]


def test_unknown_attributes_land_in_extra_and_agreeing_tenant_field_is_kept(tmp_path, run):
    text = line(debt(1, riskScore={"N": "0.25"}, tenantId={"S": "agency-001"}, blob={"B": "AAE="}))
    rows, _ = run(write_export(tmp_path / "landing", [text]))
    assert json.loads(rows[0]["_extra"]) == {"riskScore": {"N": "0.25"}, "tenantId": {"S": "agency-001"},
                                             "blob": {"B": "AAE="}}
    assert rows[0]["tenant_id"] == "agency-001"


def test_table_with_no_contract_keeps_keys_and_whole_item(tmp_path, run):
    text = line({"id": {"S": "w-1"}, "size": {"N": "3"}, "tags": {"SS": ["b", "a"]}})
    rows, _ = run(write_export(tmp_path / "landing", [text]), entity="Widget")
    assert json.loads(rows[0]["_item"]) == {"id": "w-1", "size": "3", "tags": ["b", "a"]}
    assert rows[0]["_op"] == "snapshot"


def test_incremental_shapes_give_ops_and_event_times(tmp_path, run):
    keys = {"id": {"S": "d-1"}}
    meta = {"WriteTimestampMicros": {"N": "1793491300000000"}}
    lines = [
        {"Metadata": meta, "Keys": keys, "NewImage": debt(1)},
        {"Metadata": meta, "Keys": {"id": {"S": "d-2"}}, "OldImage": debt(2), "NewImage": debt(2, balance={"N": "1"})},
        {"Metadata": {"WriteTimestampMicros": 1793491400000000}, "Keys": {"id": {"S": "d-3"}}, "OldImage": debt(3)},
    ]
    text = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    rows, quarantine = run(write_export(tmp_path / "landing", [text], kind="INCREMENTAL_EXPORT"))
    assert [(r["id"], r["_op"], r["_event_ts"].timestamp()) for r in rows] == [
        ("d-1", "insert", 1793491300.0), ("d-2", "modify", 1793491300.0), ("d-3", "remove", 1793491400.0)]
    assert str(rows[1]["balance"]) == "1.00" and str(rows[2]["balance"]) == "1520.75"
    assert quarantine == []


def test_new_image_view_delete_has_keys_only(tmp_path, run):
    lines = [{"Metadata": {"WriteTimestampMicros": {"N": "1793491300000000"}}, "Keys": {"id": {"S": "d-1"}}},
             {"Metadata": {"WriteTimestampMicros": {"N": "1793491300000001"}}, "Keys": {"id": {"S": "d-2"}},
              "NewImage": debt(2)}]
    text = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    rows, _ = run(write_export(tmp_path / "landing", [text], kind="INCREMENTAL_EXPORT", view="NEW_IMAGE"))
    assert [(r["id"], r["_op"], r["balance"]) for r in rows] == [("d-1", "remove", None), ("d-2", "modify", rows[1]["balance"])]


@pytest.mark.parametrize("slice_bytes", [1 << 10, 5000, 1 << 20])
def test_slices_are_the_file_cut_at_line_ends(tmp_path, monkeypatch, slice_bytes):
    """Every slice ends at a line end and starts at the line number it says; joined, they are the
    file's text exactly, across gzip members and past a line longer than a slice."""
    rng = random.Random(slice_bytes)
    lines = [b"x" * rng.randint(0, 900) for _ in range(3000)] + [b"y" * 3 * slice_bytes] + [b"z"] * 5
    text = b"\n".join(lines) + b"\n"
    body = gzip.compress(text[:40_001], mtime=0) + gzip.compress(text[40_001:], mtime=0)  # two members
    store = write_export(tmp_path / "landing", [text], gz=[body])
    monkeypatch.setattr(manifest, "SLICE_BYTES", slice_bytes)
    slices = list(manifest.stream_slices(store, read_export(store, SUMMARY).files[0]))
    assert b"".join(s.text for s in slices) == text
    assert [i for i, s in enumerate(slices) if not s.text.endswith(b"\n")] == [], [len(s.text) for s in slices]
    starts = [1 + text.count(b"\n", 0, sum(len(s.text) for s in slices[:i])) for i in range(len(slices))]
    assert [s.first_line for s in slices] == starts
    for s in slices:  # the decoder's line index: every newline, found by an independent count
        assert s.line_ends.tolist() == [i for i, byte in enumerate(s.text) if byte == 10]
    assert len(slices) > 1 and max(len(s.text) for s in slices) <= 4 * slice_bytes + 1000


def test_slices_keep_line_numbers_and_reasons(tmp_path, run, monkeypatch):
    """A file decoded in many small slices gives the same rows, lines and reasons as in one."""
    text = b"".join(line(debt(i)) if i % 7 else line(debt(i, balance={"N": "1.234"})) for i in range(1, 60))
    whole_rows, whole_q = run(write_export(tmp_path / "landing", [text]))
    monkeypatch.setattr(manifest, "SLICE_BYTES", 3000)
    store = write_export(tmp_path / "landing", [text])
    sliced_rows, sliced_q = run(store)
    assert len(whole_rows) == 51 and [q["_line"] for q in whole_q] == [7, 14, 21, 28, 35, 42, 49, 56]
    assert sliced_rows == whole_rows and only_reasons(sliced_q) == only_reasons(whole_q)
    f = read_export(store, SUMMARY).files[0]
    assert len(list(manifest.stream_slices(store, f))) > 5  # it really was decoded slice by slice
