"""Erasure takes exactly one consumer's lines and rows, on exports written by hand and ingested by
the real ingest: an id is never matched as a substring of another ("12" is not "123"), an enum
value names no consumer, an empty id is refused; audit results lose only values of the consumer's
items; a landed file that cannot be read is named and does not stop the other layers; a rerun
keeps the record of what the first run removed."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from datetime import UTC, datetime

import orjson
import pytest

from tenantlake import cli
from tenantlake.ingest import ingest_export
from tenantlake.lake.publish import log_batches
from tenantlake.lake.read import read
from tenantlake.lifecycle import ErasureRefused, _scrub_quality, erase_consumer, scrub_batch_log
from tenantlake.storage import LocalStore
from tests.tenantlake.formats.kit import debt

A = "agency-001"
KEY = b"k" * 32
DEBT_EXPORT, CONSUMER_EXPORT, BROKEN_EXPORT = ("01793491200000-aaaa0001", "01793491200000-aaaa0002",
                                               "01793491200000-aaaa0003")


def line(item: dict) -> bytes:
    return json.dumps({"Item": item}, separators=(",", ":")).encode() + b"\n"


def consumer(cid: str, **attrs) -> dict:
    item = {"id": {"S": cid}, "__typename": {"S": "Consumer"}, "_version": {"N": "1"},
            "_lastChangedAt": {"N": "1790000000000"}, "createdAt": {"S": "2026-10-01T10:00:00.000Z"},
            "updatedAt": {"S": "2026-10-02T10:00:00.000Z"}, "firstName": {"S": "Ann"}, "lastName": {"S": "Lee"},
            "email": {"S": f"{cid}@example.com"}, "state": {"S": "OH"}, "postalCode": {"S": "43004"},
            "householdSize": {"N": "2"}, "status": {"S": "ENROLLED"}, "counselorId": {"S": "co-1"}}
    item.update(attrs)
    return item


def export(store: LocalStore, entity: str, export_id: str, text: bytes, *, gz: bytes | None = None) -> str:
    """One full export folder as AWS writes it (one data file); returns its summary key."""
    base = f"tenant={A}/table={entity}/AWSDynamoDB/{export_id}"
    body = gzip.compress(text, mtime=0) if gz is None else gz
    store.put(f"{base}/data/f0.json.gz", body)
    n = len([x for x in text.splitlines() if x.strip()])
    store.put(f"{base}/manifest-files.json", json.dumps({
        "itemCount": n, "md5Checksum": base64.b64encode(hashlib.md5(body).digest()).decode(), "etag": "x",
        "dataFileS3Key": f"{base}/data/f0.json.gz"}).encode() + b"\n")
    arn = f"arn:aws:dynamodb:us-east-1:211111111111:table/{entity}-k3j2h5-prod"
    store.put(f"{base}/manifest-summary.json", json.dumps({
        "version": "2020-06-30", "exportArn": f"{arn}/export/{export_id}", "tableArn": arn,
        "exportTime": "2026-11-01T00:00:00.000Z", "s3Prefix": f"tenant={A}/table={entity}",
        "manifestFilesS3Key": f"{base}/manifest-files.json", "outputFormat": "DYNAMODB_JSON",
        "itemCount": n}).encode())
    return f"{base}/manifest-summary.json"


DEBT_LINES = [
    line(debt(1, consumerId={"S": "12"})),
    line(debt(2, consumerId={"S": "123"})),
    line(debt(3, consumerId={"S": "123"}, balance={"N": "1e999"})),  # quarantined: n_range
    line(debt(4, consumerId={"S": "12"}, balance={"N": "1e999"})),  # quarantined: n_range
    b'{"Item":{"id":{"S":"d-5"},"consumerId":{"S":"12"}\n',  # quarantined: malformed_json
    b'{"Item":{"id":{"S":"d-6"},"consumerId":{"S":"123"}\n',  # quarantined: malformed_json
]
CONSUMER_LINES = [
    line(consumer("12")),
    line(consumer("123")),
    line(consumer("1234", householdSize={"N": "1e999"})),  # quarantined, status ENROLLED
]


@pytest.fixture
def world(tmp_path, registry):
    """Consumers "12", "123" and "1234" of agency-001: their Debt and Consumer exports landed and
    ingested (a few lines quarantined)."""
    landing = LocalStore(tmp_path / "landing")
    lake = cli.local_lake(tmp_path / "lake")
    for entity, export_id, lines in (("Debt", DEBT_EXPORT, DEBT_LINES), ("Consumer", CONSUMER_EXPORT, CONSUMER_LINES)):
        summary = export(landing, entity, export_id, b"".join(lines))
        ingest_export(landing, summary, lake, tenant_id=A, entity=entity, tenant=registry.tenant(A), run_id="t",
                      key_for=lambda t: KEY)
    return landing, lake, tmp_path


def landed(landing: LocalStore, entity: str, export_id: str) -> tuple[list[bytes], int]:
    base = f"tenant={A}/table={entity}/AWSDynamoDB/{export_id}"
    (entry,) = [orjson.loads(x) for x in landing.get(f"{base}/manifest-files.json").splitlines()]
    body = landing.get(f"{base}/data/f0.json.gz")
    assert entry["md5Checksum"] == base64.b64encode(hashlib.md5(body).digest()).decode()  # still verifies
    return gzip.decompress(body).splitlines(keepends=True), entry["itemCount"]


def quarantined(lake, entity: str) -> list[int]:
    return sorted(read(lake, "quarantine", entity)["_line"].to_pylist())


def erase(world, consumer_id: str):
    landing, lake, tmp = world
    return erase_consumer(lake, landing, A, consumer_id, KEY, workdir=str(tmp))


def record(lake) -> list[dict]:
    return [{**r, "removed": orjson.loads(r["removed"]) if r["removed"] else None}
            for r in read(lake, "ops", "erasures").to_pylist()]


def test_an_erasure_takes_the_consumers_lines_and_rows_and_never_an_id_that_merely_contains_theirs(world):
    landing, lake, _ = world
    assert quarantined(lake, "Debt") == [3, 4, 5, 6] and quarantined(lake, "Consumer") == [3]

    done = erase(world, "12")

    assert landed(landing, "Debt", DEBT_EXPORT) == ([DEBT_LINES[1], DEBT_LINES[2], DEBT_LINES[5]], 3)
    assert landed(landing, "Consumer", CONSUMER_EXPORT) == ([CONSUMER_LINES[1], CONSUMER_LINES[2]], 2)
    assert quarantined(lake, "Debt") == [3, 6] and quarantined(lake, "Consumer") == [3]
    assert read(lake, "raw", "Debt")["id"].to_pylist() == ["d-2"]
    assert read(lake, "raw", "Consumer")["id"].to_pylist() == ["123"]
    assert done.removed == {"landing": 4, "quarantine": 2, "quality_results": 0, "protected": 2, "raw": 2}
    assert done.completed_at and done.unreadable == [] and done.found


def test_an_enum_value_an_unknown_id_or_an_empty_id_erases_nothing(world):
    landing, lake, _ = world
    before = {e: landed(landing, e, x) for e, x in (("Debt", DEBT_EXPORT), ("Consumer", CONSUMER_EXPORT))}

    for value in ("ENROLLED", "1", "d-1"):  # a status, a prefix of every id, a Debt's own id
        done = erase(world, value)
        assert not done.found and not any(done.removed.values()), (value, done.removed)

    assert {e: landed(landing, e, x) for e, x in (("Debt", DEBT_EXPORT), ("Consumer", CONSUMER_EXPORT))} == before
    assert quarantined(lake, "Debt") == [3, 4, 5, 6] and quarantined(lake, "Consumer") == [3]
    assert sorted(read(lake, "raw", "Debt")["id"].to_pylist()) == ["d-1", "d-2"]
    assert len(record(lake)) == 3  # each request is still recorded: later exports are filtered
    for empty in ("", "  "):
        with pytest.raises(ErasureRefused, match="empty"):
            erase(world, empty)
    assert len(record(lake)) == 3


def test_a_rerun_keeps_the_record_of_what_the_first_run_removed(world):
    _, lake, _ = world
    erase(world, "12")
    again = erase(world, "12")
    assert again.removed == {"landing": 4, "quarantine": 2, "quality_results": 0, "protected": 2, "raw": 2}
    (r,) = record(lake)
    assert r["removed"] == {"landing": 4, "quarantine": 2, "quality_results": 0, "protected": 2, "raw": 2}
    assert r["completed_at"] is not None


def test_a_landed_file_that_cannot_be_read_is_named_and_every_other_layer_is_still_erased(world):
    landing, lake, _ = world
    whole = gzip.compress(line(consumer("12", firstName={"S": "Later"})), mtime=0)
    export(landing, "Consumer", BROKEN_EXPORT, line(consumer("12")), gz=whole[:-12])  # an interrupted copy
    broken = f"tenant={A}/table=Consumer/AWSDynamoDB/{BROKEN_EXPORT}/data/f0.json.gz"

    first = erase(world, "12")

    assert [u.split(": ", 1)[0] for u in first.unreadable] == [broken]
    assert "not a readable gzip file" in first.unreadable[0] and "\n" not in first.unreadable[0]
    assert first.completed_at is None
    # every other layer is erased all the same
    assert landed(landing, "Debt", DEBT_EXPORT) == ([DEBT_LINES[1], DEBT_LINES[2], DEBT_LINES[5]], 3)
    assert quarantined(lake, "Debt") == [3, 6]
    assert read(lake, "raw", "Debt")["id"].to_pylist() == ["d-2"]
    removed = {"landing": 4, "quarantine": 2, "quality_results": 0, "protected": 2, "raw": 2}
    (r,) = record(lake)
    assert r["completed_at"] is None and r["removed"] == {**removed, "unreadable": first.unreadable}

    second = erase(world, "12")  # the file is still broken: still incomplete, nothing forgotten
    assert second.unreadable == first.unreadable and second.completed_at is None and second.removed == removed

    landing.put(broken, whole)  # repaired: the rerun takes its line and completes
    export(landing, "Consumer", BROKEN_EXPORT, line(consumer("12", firstName={"S": "Later"})))
    third = erase(world, "12")
    assert third.unreadable == [] and third.completed_at is not None
    assert third.removed == {**removed, "landing": 5}
    (r,) = record(lake)
    assert r["removed"] == {**removed, "landing": 5} and r["completed_at"] is not None


QUALITY = {  # a stored Debt audit: one expectation on the key column, one on an enum column
    "failed": [], "warned": ["expect_column_values_to_match_regex(id): 2",
                             "expect_column_values_to_be_in_set(account_type): 1"], "quarantined": 0,
    "result": {"success": False, "results": [
        {"success": False,
         "expectation_config": {"type": "expect_column_values_to_match_regex",
                                "kwargs": {"column": "id", "regex": "^d-"}, "meta": {"severity": "warn"}},
         "result": {"unexpected_count": 2, "partial_unexpected_list": ["d-1", "x-9"],
                    "partial_unexpected_counts": [{"value": "d-1", "count": 1}, {"value": "x-9", "count": 1}],
                    "unexpected_list": ["d-1", "x-9"], "unexpected_index_list": [{"_row": 0}, {"_row": 4}]}},
        {"success": False,
         "expectation_config": {"type": "expect_column_values_to_be_in_set",
                                "kwargs": {"column": "account_type", "value_set": ["CREDIT_CARD", "d-1"]},
                                "meta": {"severity": "warn"}},
         "result": {"unexpected_count": 1, "partial_unexpected_list": ["d-1"], "unexpected_list": ["d-1"],
                    "unexpected_index_list": [{"_row": 2}]}}]}}

# What the scrub must leave: the key column's values of the consumer's item become "[erased]"; the
# enum check's value_set and its unexpected "d-1" are the suite's and another column's: untouched.
SCRUBBED = json.loads(json.dumps(QUALITY))
SCRUBBED["result"]["results"][0]["result"].update(
    partial_unexpected_list=["[erased]", "x-9"], unexpected_list=["[erased]", "x-9"],
    partial_unexpected_counts=[{"value": "[erased]", "count": 1}, {"value": "x-9", "count": 1}])


def test_audit_results_lose_the_values_of_the_consumers_items_and_nothing_that_merely_equals_one():
    assert _scrub_quality(json.loads(json.dumps(QUALITY)), "Debt", {"Debt": {"d-1"}}) == SCRUBBED
    # a value_set is the suite's, never a consumer's, whatever it holds
    assert _scrub_quality(json.loads(json.dumps(QUALITY)), "Debt", {"Debt": {"CREDIT_CARD"}}) == QUALITY
    assert _scrub_quality(json.loads(json.dumps(QUALITY)), "Debt", {"Plan": {"d-1"}}) == QUALITY  # not a Plan check


def test_a_reference_check_loses_the_ids_of_the_consumers_items_it_refers_to():
    """A payment whose plan was not published yet lists the plan's id: the erased consumer's plan."""
    payment = {"failed": [], "warned": ["expect_column_values_to_reference_published(plan_id): 2"], "quarantined": 0,
               "result": {"success": True, "results": [{
                   "success": False,
                   "expectation_config": {"type": "expect_column_values_to_reference_published",
                                          "kwargs": {"column": "plan_id", "entity": "Plan"}, "meta": {"severity": "warn"}},
                   "result": {"unexpected_count": 2, "partial_unexpected_list": ["p-1", "p-9"]}}]}}
    scrubbed = _scrub_quality(json.loads(json.dumps(payment)), "Payment", {"Plan": {"p-1"}, "Payment": {"pay-1"}})
    assert scrubbed["result"]["results"][0]["result"]["partial_unexpected_list"] == ["[erased]", "p-9"]


def test_the_batch_log_is_rewritten_only_where_it_held_a_value_of_theirs(tmp_path):
    lake = cli.local_lake(tmp_path / "lake")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [{"tenant_id": A, "entity": entity, "export_id": export_id, "run_id": "r1", "outcome": "published",
             "quality": json.dumps(QUALITY), "drift": '[{"path":"d-1","type":"S","what":"new_attribute"}]',
             "logged_at": now} for entity, export_id in (("Debt", "e-debt"), ("Plan", "e-plan"))]
    log_batches(lake, rows, "r1", str(tmp_path))

    assert scrub_batch_log(lake, A, {"Debt": {"d-1"}, "Plan": set(), "Consumer": {"ENROLLED"}}, "erase",
                           str(tmp_path)) == 1

    after = {r["entity"]: r for r in read(lake, "ops", "batches").to_pylist()}
    assert json.loads(after["Debt"]["quality"]) == SCRUBBED
    assert json.loads(after["Plan"]["quality"]) == QUALITY
    assert after["Debt"]["drift"] == after["Plan"]["drift"] == '[{"path":"d-1","type":"S","what":"new_attribute"}]'


def test_an_ion_line_is_read_for_whose_item_it_is():
    """ION exports' quarantined lines carry their item and consumer ids too (they came out null),
    and an erasure matches an ION line by its fields, not only by a quoted id in its text."""
    from tenantlake.ingest import item_of
    from tenantlake.lifecycle import _Theirs

    ion = b'$ion_1_0 {Item:{id:"d-7",consumerId:"c-12",balance:12.50,tags:$dynamodb_SS::["a"]}}'
    assert item_of(ion) == {"id": {"S": "d-7"}, "consumerId": {"S": "c-12"}, "balance": {"N": "12.50"},
                            "tags": {"SS": ["a"]}}
    assert item_of(b"{Item:{id:") == {} and item_of(b"") == {}
    assert _Theirs("Debt", "c-12").line(ion)
    assert not _Theirs("Debt", "c-1").line(ion)
    payment = b'$ion_1_0 {Item:{id:\'pay-1\',debtId:"d-7",amount:5}}'  # no consumer field: by its debt
    assert _Theirs("Payment", "c-12", {"pay-1"}).line(payment) and not _Theirs("Payment", "c-12").line(payment)


def test_a_later_export_still_carrying_an_erased_consumer_loses_their_lines_in_landing_too(world, registry):
    """The agency has not deleted consumer "12" yet, so a later export still carries their debts:
    ingest leaves their rows out of the lake, and their lines leave the landed file too (they stayed
    there in clear, found by an independent erasure test); "123" is untouched, the export still
    verifies, and a quarantined line of theirs goes as well."""
    from tenantlake import sync
    from tenantlake.lifecycle import erased_keys

    landing, lake, _ = world
    erase(world, "12")
    later = "01793577600000-aaaa0009"
    summary = export(landing, "Debt", later, b"".join([
        line(debt(2, consumerId={"S": "123"})), line(debt(7, consumerId={"S": "12"})), line(debt(8, consumerId={"S": "123"})),
        line(debt(9, consumerId={"S": "12"}, balance={"N": "1e999"}))]))
    work = [sync.Work(registry.tenant(A), [summary])]  # as the DAG's sync task runs it
    (done,) = sync.sync_shard(landing, lake, LocalStore(world[2] / "state"), "Debt", work, "later", lambda t: KEY,
                              erased=erased_keys(lake, {A}))
    (r,) = done.batches
    assert done.error is None and (r["outcome"], r["rows"], r["erased"]) == ("published", 2, 2)
    lines, count = landed(landing, "Debt", later)
    assert count == 2 and [orjson.loads(x)["Item"]["id"]["S"] for x in lines] == ["d-2", "d-8"]
    assert orjson.loads(landing.get(summary))["itemCount"] == 2


def test_a_consumer_named_in_another_form_or_a_line_that_does_not_read_is_theirs_by_the_whole_string():
    """A wrong-typed consumer field ({"SS": ["c-1"]}, an id sent as a list) named nobody, so the
    quarantined line and the landed one kept c-1's email after the erasure (independent probe)."""
    from tenantlake.lifecycle import _Theirs

    typed = line(debt(5, consumerId={"SS": ["c-1"]}))
    listed_id = orjson.dumps({"Item": {"id": {"L": [{"S": "c-1"}]}, "email": {"S": "zeb@x.test"}}})
    other = line(debt(6, consumerId={"S": "c-2"}, note={"S": "c-1"}))  # names c-2 plainly: not theirs
    assert _Theirs("Debt", "c-1").line(typed) and _Theirs("Consumer", "c-1").line(listed_id)
    assert not _Theirs("Debt", "c-1").line(other) and not _Theirs("Debt", "c-12").line(typed)


def test_a_later_line_of_an_erased_consumer_is_dropped_at_ingest_even_when_it_does_not_read():
    """At ingest only pseudonyms of erased consumers are known: a quarantined line that is no item
    (cut short) or names its consumer in another form is theirs when a whole JSON string in it is."""
    import pyarrow as pa

    from tenantlake.ingest import _drop_erased_quarantine
    from tenantlake.pseudonyms import pseudonym

    erased = {pseudonym(KEY, A, "c-1")}
    cut = b'{"Item": {"id": {"S": "c-1"}, "email": {"S": "zeb.broken@x.test"'
    raws = [cut, line(debt(5, consumerId={"SS": ["c-1"]})).rstrip(),
            line(debt(6, consumerId={"S": "c-2"}, note={"S": "c-1"})).rstrip(), b'{"Item": {"id": {"S": "c-12"']
    q = pa.table({"_raw": pa.array(raws, pa.binary())})
    found: set[str] = set()
    kept, dropped = _drop_erased_quarantine(q, A, erased, lambda t: KEY, ("consumerId", "consumer_id"), found)
    assert dropped == 2 and kept["_raw"].to_pylist() == raws[2:] and found == {"c-1"}


def test_erasure_takes_only_their_records_from_a_file_of_firehose_records_with_no_newline():
    """Firehose may write records back to back: read as one line, the whole file went (c-2's record
    with c-1's; independent probe). They are split as ingest splits them."""
    from tenantlake.lifecycle import _records_without, _Theirs

    def record(consumer: str) -> bytes:
        return orjson.dumps({"eventName": "INSERT", "tableName": "Debt-x", "dynamodb": {
            "ApproximateCreationDateTime": 1793491300000, "Keys": {"id": {"S": f"d-{consumer}"}},
            "NewImage": debt(1, id={"S": f"d-{consumer}"}, consumerId={"S": consumer})}})

    kept, gone = _records_without(record("c-2") + record("c-1") + record("c-3"), _Theirs("Debt", "c-1"), "firehose")
    assert gone == 1 and kept == record("c-2") + b"\n" + record("c-3") + b"\n"


def test_erasure_takes_only_their_records_from_a_pipes_file_of_several_batches():
    """Batches appended one per line: read as lines, c-2's records went with c-1's (a line is a
    batch); read as one document, the file did not read. Each batch is rewritten on its own."""
    from tenantlake.formats.streams import split_records
    from tenantlake.lifecycle import _records_without, _Theirs

    def record(i: int, consumer: str) -> dict:
        return {"eventName": "INSERT", "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/Debt-x/stream/x",
                "dynamodb": {"ApproximateCreationDateTime": 1793491300, "Keys": {"id": {"S": f"d-{i}"}},
                             "NewImage": debt(i, consumerId={"S": consumer})}}

    text = b"\n".join([orjson.dumps({"Records": [record(1, "c-2"), record(2, "c-1")]}),
                       orjson.dumps([record(3, "c-1"), record(4, "c-3")]), b'{"Records": [{"broken": "c-1"'])
    kept, gone = _records_without(text, _Theirs("Debt", "c-1"), "pipes")
    assert gone == 3
    assert [r["dynamodb"]["Keys"]["id"]["S"] for _, r in split_records(kept, "pipes")] == ["d-1", "d-4"]
