"""One export through ingest into an Iceberg lake of its own (what `tenantlake convert` does): the
checks only ingest makes, with exports written by hand (tests.tenantlake.formats.kit)."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json

import orjson
import pytest

from tenantlake import cli, ingest
from tenantlake.formats.manifest import ExportError
from tenantlake.ingest import Ingest, ingest_export
from tenantlake.lake.read import read
from tests.tenantlake.formats.kit import SUMMARY, debt, line, write_export

KEY = b"k" * 32


@pytest.fixture
def lake(tmp_path):
    return cli.local_lake(tmp_path / "lake")


def go(store, lake, registry, entity="Debt"):
    return ingest_export(store, SUMMARY, lake, tenant_id="agency-001", entity=entity,
                         tenant=registry.tenant("agency-001"), run_id="t", key_for=lambda t: KEY)


def test_a_file_holding_other_than_the_manifest_lists_stops_the_batch_and_publishes_nothing(tmp_path, lake, registry):
    store = write_export(tmp_path / "landing", [b"".join(line(debt(i)) for i in range(1, 4))], counts=[5],
                         summary_count=5)
    with pytest.raises(ExportError, match=r"data/file0.json.gz: 3 item lines, but the manifest lists 5"):
        go(store, lake, registry)
    assert read(lake, "raw", "Debt") is None


def test_a_listed_file_missing_publishes_nothing_of_the_batch(tmp_path, lake, registry):
    store = write_export(tmp_path / "landing", [line(debt(1)), line(debt(2))], missing=(1,))
    with pytest.raises(ExportError, match=r"file1.json.gz: listed in the manifest but missing"):
        go(store, lake, registry)
    assert read(lake, "raw", "Debt") is None


def test_every_item_is_published_or_set_aside_with_a_reason(tmp_path, lake, registry):
    lines = [line(debt(1)), line(debt(2, balance={"N": "1e999"})), line({"id": {"N": "7"}}), line(debt(3))]
    store = write_export(tmp_path / "landing", [b"".join(lines)])
    r = go(store, lake, registry)
    assert (r.items, r.rows, r.quarantined) == (4, 2, 2)
    quarantine = read(lake, "quarantine", "Debt").to_pylist()
    assert sorted((q["_line"], q["_reason"]) for q in quarantine) == [(2, "n_range"), (3, "key_type")]
    assert {q["_line"]: q["_raw"] for q in quarantine} == {2: lines[1].rstrip(), 3: lines[2].rstrip()}  # to replay
    assert sorted(read(lake, "raw", "Debt")["id"].to_pylist()) == ["d-1", "d-3"]


@pytest.mark.parametrize("large_batch", [0, 100_000], ids=["found by DuckDB", "found by Arrow"])
def test_the_same_key_twice_keeps_the_newest_and_the_batch_publishes(tmp_path, lake, registry, monkeypatch,
                                                                     large_batch):
    monkeypatch.setattr(ingest, "LARGE_BATCH", large_batch)
    older = debt(1, _version={"N": "2"}, balance={"N": "100.00"})
    newer = debt(1, _version={"N": "3"}, balance={"N": "90.00"})
    store = write_export(tmp_path / "landing", [line(older) + line(debt(2)), line(newer)])
    r = go(store, lake, registry)
    assert (r.items, r.rows, r.quarantined) == (3, 2, 1)
    raw = {row["id"]: row for row in read(lake, "raw", "Debt").to_pylist()}
    assert str(raw["d-1"]["balance"]) == "90.00"
    (q,) = read(lake, "quarantine", "Debt").to_pylist()
    assert q["_reason"] == "duplicate_key" and "newer _version" in q["_detail"] and q["_item_id"] == "d-1"
    assert q["_raw"] == line(older).rstrip()  # the line as sent, not the decoded row


def _ion(av: dict) -> str:
    """A DynamoDB JSON value as Ion text, written by hand (the reference's ION line)."""
    (t, v), = av.items()
    if t == "S":
        return json.dumps(v)
    if t == "N":
        return v if "." in v or "e" in v.lower() else f"{v}."  # an Ion decimal, as the export writes N
    if t == "SS":
        return "$dynamodb_SS::[" + ",".join(json.dumps(x) for x in v) + "]"
    assert t == "M", t
    return "{" + ",".join(f"{json.dumps(k)}:{_ion(x)}" for k, x in v.items()) + "}"


def test_an_ion_row_set_aside_after_decoding_keeps_its_ion_line_as_sent(tmp_path, lake, registry):
    """A duplicate (or a row the audit refuses) of an ION export: its _raw is the line that was sent,
    as for DYNAMODB_JSON, not the decoded row as JSON."""
    older = debt(1, _version={"N": "2"}, balance={"N": "100.00"})
    newer = debt(1, _version={"N": "3"}, balance={"N": "90.00"})
    lines = [f"$ion_1_0 {{Item:{_ion({'M': item})}}}\n".encode() for item in (older, debt(2), newer)]
    store = write_export(tmp_path / "landing", [b"".join(lines)])
    summary = json.loads(store.get(SUMMARY))
    store.put(SUMMARY, json.dumps({**summary, "outputFormat": "ION"}).encode())
    r = go(store, lake, registry)
    assert (r.items, r.rows, r.quarantined) == (3, 2, 1)
    assert str({x["id"]: x for x in read(lake, "raw", "Debt").to_pylist()}["d-1"]["balance"]) == "90.00"
    (q,) = read(lake, "quarantine", "Debt").to_pylist()
    assert q["_reason"] == "duplicate_key" and q["_raw"] == lines[0].rstrip()


def test_rows_the_audit_sets_aside_keep_the_line_as_sent(tmp_path, lake, registry):
    bad = line(debt(2, balance={"N": "-5.00"}))  # decodes, then fails the suite's balance range
    store = write_export(tmp_path / "landing", [line(debt(1)), bad + line(debt(3))])
    r = go(store, lake, registry)
    assert (r.items, r.rows, r.quarantined) == (3, 2, 1)
    (q,) = read(lake, "quarantine", "Debt").to_pylist()
    assert q["_reason"] == "expect_column_values_to_be_between(balance)" and q["_line"] == 1
    assert q["_raw"] == bad.rstrip() and q["_item_id"] == "d-2"


def _firehose(event: str, item: dict, ms: int) -> bytes:
    """One Kinesis-via-Firehose stream record, written by hand."""
    image = "OldImage" if event == "REMOVE" else "NewImage"
    return orjson.dumps({"awsRegion": "us-east-1", "eventID": f"e-{ms}", "eventName": event,
                         "dynamodb": {"ApproximateCreationDateTime": ms, "Keys": {"id": item["id"]}, image: item}})


def test_a_stream_record_the_audit_sets_aside_keeps_the_record_as_sent(tmp_path, lake):
    from tenantlake.storage import LocalStore

    records = [_firehose("INSERT", debt(1), 1791200000000), _firehose("INSERT", debt(2, balance={"N": "-5.00"}),
                                                                          1791200001000),
               _firehose("REMOVE", debt(3, balance={"N": "abc"}), 1791200002000)]  # a refused old value
    landing = LocalStore(tmp_path / "landing")
    key = "tenant=agency-001/table=Debt/streams/firehose/part-1.json.gz"
    landing.put(key, gzip.compress(b"".join(records)))  # concatenated, as Firehose delivers them
    with Ingest(lake, "Debt", "t", lambda t: KEY) as session:
        (r,), _ = session.publish([session.stage_stream(landing, key, "agency-001", "firehose")])
    assert (r.items, r.rows, r.quarantined) == (3, 2, 1)
    assert sorted((x["id"], x["_op"]) for x in read(lake, "raw", "Debt").to_pylist()) == [
        ("d-1", "insert"), ("d-3", "remove")]  # the delete is applied
    (q,) = read(lake, "quarantine", "Debt").to_pylist()
    assert (q["_line"], q["_raw"]) == (2, records[1])


def test_drift_is_published_kept_in_extra_and_logged(tmp_path, lake, registry):
    drifting = debt(1, riskScore={"N": "712"}, apr={"S": "19.99"})
    store = write_export(tmp_path / "landing", [line(drifting) + line(debt(2))])
    r = go(store, lake, registry)
    assert (r.rows, r.quarantined) == (2, 0)
    row = next(x for x in read(lake, "raw", "Debt").to_pylist() if x["id"] == "d-1")
    assert orjson.loads(row["_extra"]) == {"riskScore": {"N": "712"}} and str(row["apr"]) == "19.9900"
    (logged,) = read(lake, "ops", "batches").to_pylist()
    drift = {(d["path"], d["type"], d["what"]) for d in orjson.loads(logged["drift"])}
    assert drift == {("riskScore", "N", "new_attribute"), ("apr", "S->N", "coerced")}


def test_convert_never_prints_a_traceback_for_a_bad_export(tmp_path, capsys, registry):
    store = write_export(tmp_path / "landing", [line(debt(1))])
    data = next((tmp_path / "landing").rglob("*.json.gz"))
    data.write_bytes(gzip.compress(b"not json at all\n"))  # its MD5 no longer matches
    code = cli.main(["convert", "--export-dir", str(store.root / SUMMARY.rsplit("/", 1)[0]), "--tenant", "agency-001",
                     "--entity", "Debt", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "MD5" in err


@pytest.mark.parametrize(("change", "said"), [
    ({"registry": ("aws_account_id:", "aws_acount_id:")}, "tenant 'agency-001' has an invalid registry entry"),
    ({"registry": ("Debt:", "Dbet:")}, "1 unknown entity (one close to Debt"),
    ({"entity": "Dept"}, "--entity Dept: no contract, and agency-001's registry entry has no such table"),
    ({"out": "a-file"}, "a-file/_catalog: Not a directory"),
])
def test_convert_refuses_a_user_mistake_in_one_line(tmp_path, capsys, change, said):
    """A typo in the tenant's registry entry used to switch the account check off ("not in the
    registry", exit 0); an unknown entity of a registered tenant, or --out naming a file, ended with
    a traceback or a table of the typo's name (an independent probe)."""
    from tenantlake.registry import DEFAULT_PATH

    store = write_export(tmp_path / "landing", [line(debt(1))])
    text = DEFAULT_PATH.read_text()
    old, new = change.get("registry", ("", ""))
    head, _, rest = text.partition("tenant_id: agency-001")
    entry, _, tail = rest.partition("tenant_id:")
    registry = tmp_path / "tenants.yaml"
    registry.write_text(head + "tenant_id: agency-001" + entry.replace(old, new, 1) + ("tenant_id:" + tail if tail else ""))
    (tmp_path / "a-file").write_text("")
    code = cli.main(["convert", "--export-dir", str(store.root / SUMMARY.rsplit("/", 1)[0]), "--tenant", "agency-001",
                     "--entity", change.get("entity", "Debt"), "--out", str(tmp_path / change.get("out", "out")),
                     "--registry", str(registry)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and said in err and err.count("\n") == 1, err


def test_convert_reads_an_incremental_export_from_its_own_folder(tmp_path, capsys, registry):
    """AWS keeps an incremental export's data in the shared AWSDynamoDB/data/ folder, beside the
    export's folder: convert given the export's folder finds it there (it said 'missing')."""
    change = {"Metadata": {"WriteTimestampMicros": {"N": "1793491300000000"}}, "Keys": {"id": {"S": "d-1"}},
              "NewImage": debt(1)}
    store = write_export(tmp_path / "landing", [json.dumps(change).encode() + b"\n"], kind="INCREMENTAL_EXPORT")
    folder = store.root / SUMMARY.rsplit("/", 1)[0]
    shared = folder.parent / "data" / "file0.json.gz"
    shared.parent.mkdir()
    (folder / "data" / "file0.json.gz").rename(shared)
    (folder / "data").rmdir()
    manifest = folder / "manifest-files.json"
    manifest.write_bytes(manifest.read_bytes().replace(f"{folder.name}/data/".encode(), b"data/"))
    code = cli.main(["convert", "--export-dir", str(folder), "--tenant", "agency-001", "--entity", "Debt",
                     "--out", str(tmp_path / "out")])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and [(b["kind"], b["rows"]) for b in out["batches"]] == [("INCREMENTAL_EXPORT", 1)]


def test_a_shard_of_two_tenants_is_one_commit_per_zone(tmp_path, lake, registry):
    stores = [write_export(tmp_path / f"landing{n}", [line(debt(n))]) for n in (1, 2)]
    with Ingest(lake, "Debt", "t", lambda t: KEY) as session:
        staged = [session.stage_export(stores[0], SUMMARY, "agency-001", registry.tenant("agency-001")),
                  session.stage_export(stores[1], SUMMARY, "agency-001", registry.tenant("agency-001"))]
        results, published = session.publish(staged[:1] + [staged[1]])
    assert [r.outcome for r in results] == ["published", "replayed"]  # same export id: the second is a replay
    assert len(lake.table("raw", "Debt", refresh=True).metadata.snapshots) == 1


def _export(root, lines: list[bytes], export_id: str, at: str, kind: str = "FULL_EXPORT"):
    """A kit export with its own id and time (the kit's are fixed)."""
    store = write_export(root, [b"".join(lines)], kind=kind)
    summary = root / SUMMARY
    doc = orjson.loads(summary.read_bytes())
    doc["exportArn"] = doc["exportArn"].replace("0badf00d", export_id)
    doc["exportTime" if kind == "FULL_EXPORT" else "exportToTime"] = at
    summary.write_bytes(orjson.dumps(doc))
    return store


def test_a_full_resnapshot_repairs_a_delete_missed_in_lost_windows(tmp_path, lake, registry):
    from tenantlake.lake.read import live_keys

    def run(store):
        return ingest_export(store, SUMMARY, lake, tenant_id="agency-001", entity="Debt",
                             tenant=registry.tenant("agency-001"), run_id="t", key_for=lambda t: KEY)

    run(_export(tmp_path / "full1", [line(debt(i)) for i in (1, 2, 3)], "00000001", "2026-11-01T00:00:00.000Z"))
    late_insert = json.dumps({"Metadata": {"WriteTimestampMicros": {"N": "1793498400000000"}},  # 02:00
                              "Keys": {"id": {"S": "d-4"}}, "NewImage": debt(4)}).encode() + b"\n"
    run(_export(tmp_path / "window", [late_insert], "00000002", "2026-11-01T03:00:00.000Z", "INCREMENTAL_EXPORT"))
    # d-2 was deleted in a window we never got; the re-snapshot at 01:00 no longer holds it (nor d-4, born later)
    r = run(_export(tmp_path / "full2", [line(debt(i)) for i in (1, 3)], "00000003", "2026-11-01T01:00:00.000Z"))
    assert r.inferred_deletes == 2
    removes = {x["id"]: x["_event_ts"].isoformat() for x in read(lake, "raw", "Debt").to_pylist() if x["_op"] == "remove"}
    assert removes == {"d-2": "2026-11-01T01:00:00+00:00", "d-4": "2026-11-01T01:00:00+00:00"}
    # latest-wins: d-2 is gone; d-4's insert at 02:00 is newer than the snapshot, so it stays
    assert live_keys(lake, "Debt", {"agency-001"})["agency-001"] == {"d-1", "d-3", "d-4"}


def _hmac_key(consumer_id: str) -> str:
    """A consumer's key by the documented rule, computed here: HMAC-SHA256 of "<tenant>|<id>"."""
    return hmac.new(KEY, f"agency-001|{consumer_id}".encode(), hashlib.sha256).hexdigest()[:32]


def _incremental(i: int, at_us: int, **attrs) -> bytes:
    return json.dumps({"Metadata": {"WriteTimestampMicros": {"N": str(at_us)}}, "Keys": {"id": {"S": f"d-{i}"}},
                       "NewImage": debt(i, **attrs)}).encode() + b"\n"


DAY_US = 86_400_000_000
NOV_1 = 1_793_491_200_000_000  # 2026-11-01T00:00:00Z


def test_a_change_stamped_outside_its_incremental_window_is_published_and_warned(tmp_path, lake, registry):
    """The kit's window is [2026-11-01T00:00, 01:00): the start is in it, the end and later are not,
    nor is a change before the start. Each such change is published (latest-wins orders it) and the
    batch's result counts the rows outside the window."""
    hour = DAY_US // 24
    lines = [_incremental(1, NOV_1), _incremental(2, NOV_1 + hour - 1),  # in: the start, the last microsecond
             _incremental(3, NOV_1 + hour), _incremental(4, NOV_1 + 5 * hour), _incremental(5, NOV_1 - 1)]
    store = write_export(tmp_path / "landing", [b"".join(lines)], kind="INCREMENTAL_EXPORT")
    result = go(store, lake, registry)
    assert result.rows == 5 and result.quarantined == 0
    log = [orjson.loads(r["quality"]) for r in read(lake, "ops", "batches").to_pylist() if r["quality"]]
    assert "expect_column_values_to_be_between(_event_ts): 3" in log[0]["warned"]
    assert not log[0]["failed"]


def test_an_erased_consumers_rows_never_reach_the_audit_or_its_results(tmp_path, lake, registry):
    """Their values would come back in the stored results (an unknown enum value is listed there)
    and their bad rows in quarantine; the row count the audit expects leaves them out too."""
    items = [debt(1, consumerId={"S": "c-1"}, accountType={"S": "ERASED_ONLY_TYPE"}),
             debt(2, consumerId={"S": "c-1"}, balance={"N": "-5"}),  # would be quarantined
             debt(3, consumerId={"S": "c-2"}, accountType={"S": "KEPT_TYPE"}),
             debt(4, consumerId={"S": "c-12"}),  # an id that merely contains the erased one
             debt(5, consumerId={"S": "c-1"}, balance={"N": "abc"}),  # the decoder sets it aside
             debt(6, consumerId={"S": "c-2"}, balance={"N": "abc"}, creditorName={"S": "c-1"})]  # not c-1's
    store = write_export(tmp_path / "landing", [b"".join(map(line, items))])
    with Ingest(lake, "Debt", "t", lambda t: KEY, erased={"agency-001": {_hmac_key("c-1")}}) as session:
        (r,), _ = session.publish([session.stage_export(store, SUMMARY, "agency-001", registry.tenant("agency-001"))])
    assert (r.outcome, r.rows, r.quarantined, r.erased) == ("published", 2, 1, 3)
    assert [x["_item_id"] for x in read(lake, "quarantine", "Debt").to_pylist()] == ["d-6"]
    assert sorted(x["id"] for x in read(lake, "raw", "Debt").to_pylist()) == ["d-3", "d-4"]
    (stored,) = [x["quality"] for x in read(lake, "ops", "batches").to_pylist() if x["quality"]]
    assert "KEPT_TYPE" in stored and "ERASED_ONLY_TYPE" not in stored
    assert not orjson.loads(stored)["failed"]


@pytest.mark.parametrize("kind", ["FULL_EXPORT", "INCREMENTAL_EXPORT"])
def test_lines_of_the_other_export_type_fail_the_batch_and_publish_nothing(tmp_path, lake, registry, kind):
    """An export double (moto's) writing full-export lines under an incremental manifest had every
    item quarantined while the window counted as done: the export is not what it says, so the batch
    fails with the file named, nothing is published and the tenant's windows wait."""
    lines = [_incremental(1, NOV_1 + 10), _incremental(2, NOV_1 + 20)] if kind == "FULL_EXPORT" else \
        [line(debt(1)), line(debt(2))]
    store = write_export(tmp_path / "landing", [b"".join(lines)], kind=kind)
    with pytest.raises(ExportError, match=rf"file0.json.gz: 2 of 2 lines are not {kind} lines"):
        go(store, lake, registry)
    assert read(lake, "raw", "Debt") is None and read(lake, "quarantine", "Debt") is None


@pytest.mark.parametrize("case", ["as staged", "a duplicate set aside", "an erased consumer", "two days"])
def test_the_protected_zone_is_the_published_rows_projection_row_for_row(tmp_path, lake, registry, case):
    """Each file's projection is made where it is decoded; whatever then changes the rows (a duplicate
    set aside, an erased consumer dropped, a cut at a day) the protected rows are still exactly the
    published raw rows, each consumer under the key computed here by the documented rule."""
    files = [[debt(i, consumerId={"S": f"c-{i % 3}"}) for i in range(1, 6)],
             [debt(i, consumerId={"S": f"c-{i % 3}"}) for i in range(6, 11)]]
    kind, erased = "FULL_EXPORT", {}
    if case == "a duplicate set aside":
        files[1].append(debt(2, consumerId={"S": "c-2"}, _version={"N": "9"}))
    if case == "an erased consumer":
        erased = {"agency-001": {_hmac_key("c-1")}}
    texts = [b"".join(map(line, f)) for f in files]
    if case == "two days":
        kind = "INCREMENTAL_EXPORT"
        texts = [b"".join(_incremental(int(d["id"]["S"][2:]), NOV_1 + n * DAY_US // 2 + 1, **d) for n, d in enumerate(f))
                 for f in files]
    store = write_export(tmp_path / "landing", texts, kind=kind)
    # (the kit's incremental window is one hour: rows of two days are outside it for the audit)
    with Ingest(lake, "Debt", "t", lambda t: KEY, erased=erased, workers=2, audit=case != "two days") as session:
        session.publish([session.stage_export(store, SUMMARY, "agency-001", registry.tenant("agency-001"))])
    raw = {r["id"]: r for r in read(lake, "raw", "Debt").to_pylist()}
    protected = read(lake, "protected", "Debt").to_pylist()
    assert sorted(r["id"] for r in protected) == sorted(raw) and len(raw) == (6 if erased else 10)
    for row in protected:
        key = row["id"]
        assert row["consumer_key"] == _hmac_key(raw[key]["consumer_id"])
        assert "consumer_id" not in row and row["balance"] == raw[key]["balance"]
        assert row["_event_ts"] == raw[key]["_event_ts"]
    if case == "two days":
        assert len({r["_event_ts"].date() for r in raw.values()}) == 3


def test_auditing_a_shard_a_few_batches_at_a_time_gives_the_same_verdicts(tmp_path, registry, monkeypatch):
    """Batches are audited in groups of about AUDIT_ROWS rows (memory), each on its own semantics."""
    def run(audit_rows: int, root):
        monkeypatch.setattr(ingest, "AUDIT_ROWS", audit_rows)
        lake = cli.local_lake(root / "lake")
        texts = [b"".join(line(debt(i)) for i in range(1, 4)),
                 line(debt(1)) + line(debt(2, balance={"N": "-5"})),  # the audit sets the second aside
                 line(debt(1)) + line(debt(1))]  # a key twice: one copy set aside before the audit
        with Ingest(lake, "Debt", "t", lambda t: KEY) as session:
            staged = [session.stage_export(write_export(root / f"landing{n}", [text]), SUMMARY, f"t{n}", None)
                      for n, text in enumerate(texts)]
            results, _ = session.publish(staged)
        return [(r.tenant_id, r.outcome, r.rows, r.quarantined) for r in results]

    alone = run(1, tmp_path / "alone")
    assert alone == [("t0", "published", 3, 0), ("t1", "published", 1, 1), ("t2", "published", 1, 1)]
    assert run(100_000, tmp_path / "together") == alone


def test_only_a_file_no_record_reads_from_is_set_aside_a_bug_in_the_decoder_fails_the_batch(tmp_path, lake,
                                                                                          monkeypatch):
    """A file's own fault (a Pipes batch that is not JSON) is quarantined whole and its table goes on;
    an error of the code is not the file's, and setting the file aside would hide it as bad data."""
    from tenantlake import ingest
    from tenantlake.storage import LocalStore

    landing = LocalStore(tmp_path / "landing")
    key = "tenant=agency-001/table=Debt/streams/pipes/part-1.json"
    landing.put(key, b'{"Records": [{"eventName": "INSERT", ')  # cut short
    with Ingest(lake, "Debt", "t", lambda t: KEY) as session:
        staged = session.stage_stream(landing, key, "agency-001", "pipes")
    (q,) = staged.parts[0].quarantine.to_pylist()
    assert q["_reason"] == "unreadable_file" and "not JSON" in q["_detail"] and key in q["_detail"]

    def broken_decoder(*args, **kwargs):
        raise ValueError("a bug, not the file's fault")

    monkeypatch.setattr(ingest, "decode_stream", broken_decoder)
    landing.put(key, orjson.dumps({"Records": []}))
    with Ingest(lake, "Debt", "t", lambda t: KEY) as session, pytest.raises(ValueError, match="a bug"):
        session.stage_stream(landing, key, "agency-001", "pipes")


def test_a_stream_record_stamped_past_tomorrow_is_set_aside_not_made_the_latest_change(tmp_path, lake):
    """Latest-wins would let a change stamped in 2300 (a clock or unit gone wrong) outrank every real
    change of its item for ever; a day ahead of the reading is tolerated (clocks drift)."""
    import time

    from tenantlake.storage import LocalStore

    now_ms = int(time.time() * 1000)
    records = [_firehose("INSERT", debt(1), now_ms + 23 * 3_600_000),  # 23 hours ahead: tolerated
               _firehose("INSERT", debt(2), 10_413_792_000_000_000)]  # µs: the year 2300
    landing = LocalStore(tmp_path / "landing")
    key = "tenant=agency-001/table=Debt/streams/firehose/part-1.json.gz"
    landing.put(key, gzip.compress(b"\n".join(records)))
    with Ingest(lake, "Debt", "t", lambda t: KEY) as session:
        staged = session.stage_stream(landing, key, "agency-001", "firehose")
    (q,) = staged.parts[0].quarantine.to_pylist()
    assert (q["_line"], q["_reason"], q["_raw"]) == (2, "timestamp_in_future", records[1])
    assert "2300-01-01" in q["_detail"] and staged.parts[0].rows == 1


T0_MS = 1793491200000  # the kit's exportTime, 2026-11-01T00:00:00Z


def _snapshot_then_stream(tmp_path, lake, registry, items: list[dict], records: list[bytes], together: bool):
    """A FULL export of `items` at T0, then a Firehose file of `records` read after it: published
    one after the other, or both in one publish. The stream batch's result."""
    from tenantlake.storage import LocalStore

    store = write_export(tmp_path / "landing", [b"".join(line(i) for i in items)])
    landing = LocalStore(tmp_path / "streams")
    key = "tenant=agency-001/table=Debt/streams/firehose/part-1.json.gz"
    landing.put(key, gzip.compress(b"\n".join(records)))
    with Ingest(lake, "Debt", "t", lambda t: KEY) as session:
        full = session.stage_export(store, SUMMARY, "agency-001", registry.tenant("agency-001"))
        if not together:
            session.publish([full])
        stream = session.stage_stream(landing, key, "agency-001", "firehose")
        results, _ = session.publish([full, stream] if together else [stream])
    return results[-1]


@pytest.mark.parametrize("together", [False, True], ids=["snapshot published earlier", "in one publish"])
def test_a_change_older_than_the_snapshot_of_a_key_it_lacks_does_not_bring_the_key_back(tmp_path, lake, registry,
                                                                                       together):
    """The FULL export at T0 holds d-1 only. Stream records read after it: an insert of d-2 at T0-100 s
    (its delete never arrived), a modify of d-1 at T0-50 s, an insert of d-3 at T0+100 s. At T0 the
    table held d-1 alone, so d-2 is removed at T0; d-1 stays as the snapshot has it; d-3 is newer."""
    from tenantlake.lake.read import live_keys

    records = [_firehose("INSERT", debt(2), T0_MS - 100_000),
               _firehose("MODIFY", debt(1, balance={"N": "99.00"}), T0_MS - 50_000),
               _firehose("INSERT", debt(3), T0_MS + 100_000)]
    result = _snapshot_then_stream(tmp_path, lake, registry, [debt(1, balance={"N": "10.00"})], records, together)
    assert live_keys(lake, "Debt", {"agency-001"}) == {"agency-001": {"d-1", "d-3"}}
    removes = [r for r in read(lake, "raw", "Debt").to_pylist() if r["_op"] == "remove"]
    assert [(r["id"], r["_event_ts"].isoformat(), r["_line"]) for r in removes] == [
        ("d-2", "2026-11-01T00:00:00+00:00", 0)]
    assert result.inferred_deletes == 1


@pytest.mark.parametrize("together", [False, True], ids=["snapshot published earlier", "in one publish"])
def test_a_key_the_snapshot_quarantined_was_still_there_so_its_older_change_stays(tmp_path, lake, registry,
                                                                                  together):
    from tenantlake.lake.read import live_keys

    result = _snapshot_then_stream(tmp_path, lake, registry, [debt(1), debt(2, balance={"N": "1e999"})],
                                   [_firehose("INSERT", debt(2), T0_MS - 100_000)], together)
    assert live_keys(lake, "Debt", {"agency-001"}) == {"agency-001": {"d-1", "d-2"}}
    assert result.inferred_deletes == 0


def test_a_resnapshot_killed_between_raw_and_protected_gives_protected_what_raw_holds(tmp_path, lake, registry,
                                                                                        monkeypatch):
    """The rerun asked raw which keys were live, and raw held the killed try's later window by then:
    its insert of d-4 became one more inferred remove, in protected only (independent probe)."""
    from tenantlake.lake import publish as publish_module

    tenant = registry.tenant("agency-001")
    ingest_export(_export(tmp_path / "full1", [line(debt(i)) for i in (1, 2, 3)], "00000001",
                          "2026-11-01T00:00:00.000Z"), SUMMARY, lake, tenant_id="agency-001", entity="Debt",
                  tenant=tenant, run_id="t0", key_for=lambda t: KEY)
    full2 = _export(tmp_path / "full2", [line(debt(i)) for i in (1, 3)], "00000003", "2026-11-01T01:00:00.000Z")
    window = _export(tmp_path / "window", [_incremental(4, NOV_1 + 2 * 3_600_000_000)], "00000004",
                     "2026-11-01T03:00:00.000Z", "INCREMENTAL_EXPORT")

    def publish_both(run_id: str):
        with Ingest(lake, "Debt", run_id, lambda t: KEY) as session:
            return session.publish([session.stage_export(full2, SUMMARY, "agency-001", tenant),
                                    session.stage_export(window, SUMMARY, "agency-001", tenant)])

    real = publish_module.append_new_batches

    def killed_at_protected(lake_, zone, *args):
        if zone == "protected":
            raise KeyboardInterrupt("killed")
        return real(lake_, zone, *args)

    monkeypatch.setattr(publish_module, "append_new_batches", killed_at_protected)
    with pytest.raises(KeyboardInterrupt):
        publish_both("t1")
    monkeypatch.setattr(publish_module, "append_new_batches", real)
    publish_both("t2")
    raw, protected = read(lake, "raw", "Debt"), read(lake, "protected", "Debt")
    removes = lambda t: sorted(r["id"] for r in t.to_pylist() if r["_op"] == "remove")  # noqa: E731
    assert removes(raw) == removes(protected) == ["d-2"]  # d-2 missed; d-4 was born after the snapshot
    assert raw.num_rows == protected.num_rows == 3 + 2 + 1 + 1
