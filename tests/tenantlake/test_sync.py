"""What one (tenant, table) sync picks up: the rules of order, gaps and re-snapshots, and streams."""

import pytest

from tenantlake import sync, watermarks
from tenantlake.formats.manifest import ExportError
from tenantlake.storage import LocalStore
from tenantlake.sync import Landed, pending

H = 3_600_000_000
FULL_A = Landed("a/manifest-summary.json", "FULL_EXPORT", None, 0)
FULL_B = Landed("b/manifest-summary.json", "FULL_EXPORT", None, 2 * H)
INC = [Landed(f"i{i}/manifest-summary.json", "INCREMENTAL_EXPORT", i * H, (i + 1) * H) for i in range(4)]


def keys(items):
    return [e.summary_key.split("/")[0] for e in items]


def test_first_run_takes_the_latest_full_export_then_the_windows_after_it():
    assert keys(pending([FULL_A, *INC, FULL_B], None, False)) == ["b", "i2", "i3"]


def test_later_runs_continue_from_the_watermark():
    mark = watermarks.Watermark(2 * H, "i1", "INCREMENTAL_EXPORT")
    assert keys(pending([FULL_A, *INC, FULL_B], mark, False)) == ["i2", "i3"]
    assert keys(pending([FULL_A, *INC, FULL_B], mark, True)) == ["b", "i2", "i3"]  # forced re-snapshot


def test_a_gap_in_the_windows_is_an_error_not_a_skip():
    mark = watermarks.Watermark(1 * H, "i0", "INCREMENTAL_EXPORT")
    with pytest.raises(ExportError, match=r"i2/manifest-summary.json: gap in incremental exports"):
        pending([FULL_A, INC[0], INC[2], INC[3]], mark, False)


def test_at_a_gap_the_windows_before_it_are_taken_and_the_gap_is_said():
    mark = watermarks.Watermark(1 * H, "i0", "INCREMENTAL_EXPORT")
    gaps = []
    assert keys(pending([FULL_A, INC[0], INC[1], INC[3]], mark, False, gaps=gaps)) == ["i1"]
    assert gaps == ["i3/manifest-summary.json: gap in incremental exports: the window starts at "
                    "1970-01-01 03:00 UTC, but data is published only up to 1970-01-01 02:00 UTC"]


def test_a_gap_fails_only_its_tenant_after_the_windows_before_it_publish(fleet, registry, tmp_path):
    """One shard, two tenants: agency-002's second window never landed. agency-001 publishes every
    window; agency-002 publishes its FULL export and first window, then fails on the gap (not to be
    retried at once); its watermark stays at the gap (the whole shard used to fail and retry)."""
    import shutil

    from tenantlake.cli import local_lake

    out, _ = fleet
    for t in ("agency-001", "agency-002"):
        shutil.copytree(out / "landing" / f"tenant={t}" / "table=Debt", tmp_path / "landing" / f"tenant={t}" / "table=Debt")
    landing, state = LocalStore(tmp_path / "landing"), LocalStore(tmp_path / "lake")
    lake = local_lake(tmp_path / "lake")
    windows = [e for e in sync.landed_exports(landing, "agency-002", "Debt") if e.kind == "INCREMENTAL_EXPORT"]
    assert len(windows) >= 3
    (tmp_path / "landing" / windows[1].summary_key).unlink()  # as if it never landed
    work = [sync.plan_local(landing, lake, state, registry.tenant(t), "Debt") for t in ("agency-001", "agency-002")]
    assert work[0].stop is None and work[1].stop.startswith(f"{windows[2].summary_key}: gap in incremental exports")
    done = {o.tenant_id: o for o in sync.sync_shard(landing, lake, state, "Debt", work, "r1", lambda t: b"k" * 32)}
    assert done["agency-001"].error is None and len(done["agency-001"].batches) == len(work[0].exports)
    assert done["agency-002"].error == f"ExportError: {work[1].stop}" and done["agency-002"].heals is False
    assert [b["outcome"] for b in done["agency-002"].batches] == ["published", "published"]
    assert done["agency-002"].watermark_us == windows[0].to_us


def test_nothing_landed_yet_is_nothing_to_do():
    assert pending([], None, False) == [] and pending(INC, None, False) == []


def test_stream_files_are_picked_up_once(fleet, registry, tmp_path):
    """A tenant whose changes come from streams: its full export, then every landed stream file as
    one batch each (latest-wins by event time orders them against the snapshot), read once: a
    second run finds nothing new (the batch log knows each file's key)."""
    from tenantlake.cli import local_lake
    from tenantlake.ingest import stream_batch_id

    out, _ = fleet
    landing, state = LocalStore(out / "landing"), LocalStore(tmp_path / "lake")
    lake = local_lake(tmp_path / "lake")
    tenant = registry.tenant("agency-001").model_copy(update={"change_source": "streams"})
    files = landing.list("tenant=agency-001/table=Payment/streams/")
    work = sync.plan_local(landing, lake, state, tenant, "Payment")
    assert len(work.exports) == 1 and sorted(k for _, k in work.streams) == sorted(files) and files
    done = sync.sync_shard(landing, lake, state, "Payment", [work], "r1", lambda t: b"k" * 32)[0]
    assert done.error is None
    streamed = [b for b in done.batches if b["kind"].startswith("STREAM")]
    assert {b["kind"] for b in streamed} == {"STREAM_PIPES", "STREAM_FIREHOSE"} and len(streamed) == len(files)
    assert {b["export_id"] for b in streamed} == {stream_batch_id(k) for k in files}
    again = sync.plan_local(landing, lake, state, tenant, "Payment")
    assert again.exports == [] and again.streams == []  # each file read once


def test_an_unreadable_stream_file_is_set_aside_whole_and_the_later_files_go_on(fleet, registry, tmp_path):
    """A truncated Pipes batch cannot be read, now or later: it is quarantined whole (its bytes
    kept) and the files after it are read, where it used to fail every run and hold them all back.
    An empty file holds no records."""
    import gzip
    import shutil

    import orjson

    from tenantlake.cli import local_lake
    from tenantlake.lake.read import read

    out, _ = fleet
    table = "tenant=agency-001/table=Payment"
    shutil.copytree(out / "landing" / table, tmp_path / "landing" / table)
    landing, state = LocalStore(tmp_path / "landing"), LocalStore(tmp_path / "lake")
    lake = local_lake(tmp_path / "lake")
    tenant = registry.tenant("agency-001").model_copy(update={"change_source": "streams"})
    pipes = sorted(k for k in landing.list(f"{table}/streams/") if "/pipes/" in k)
    record = next(r for r in orjson.loads(gzip.decompress(landing.get(pipes[0])))["Records"]
                  if "NewImage" in r["dynamodb"])
    record["eventName"], record["dynamodb"]["Keys"]["id"]["S"] = "INSERT", "pay-after-the-broken-file"
    record["dynamodb"]["NewImage"]["id"]["S"] = "pay-after-the-broken-file"
    later = f"{table}/streams/pipes/2026/12/31/23"
    sent = orjson.dumps({"Records": [record] * 3})
    broken = gzip.compress(sent)[:-40]
    landing.put(f"{later}/a-empty.json.gz", gzip.compress(b""))
    landing.put(f"{later}/b-truncated.json.gz", broken)
    landing.put(f"{later}/c-good.json.gz", gzip.compress(orjson.dumps({"Records": [record]})))
    work = sync.plan_local(landing, lake, state, tenant, "Payment")
    done = sync.sync_shard(landing, lake, state, "Payment", [work], "r1", lambda t: b"k" * 32)[0]
    assert done.error is None
    ids = read(lake, "raw", "Payment", "agency-001").column("id").to_pylist()
    assert "pay-after-the-broken-file" in ids
    quarantined = read(lake, "quarantine", "Payment", "agency-001").to_pylist()
    whole = [q for q in quarantined if q["_reason"] == "unreadable_file"]
    assert len(whole) == 1 and "b-truncated.json.gz" in whole[0]["_detail"]
    kept = whole[0]["_raw"]  # the text that inflates, where erasure can find a consumer's id
    assert kept.startswith(b"{\"Records\":[{") and sent.startswith(kept) and b"pay-after-the-broken-file" in kept
    assert sync.plan_local(landing, lake, state, tenant, "Payment").streams == []  # none waits to be read again


def test_stream_files_that_are_not_read_are_said_so(registry, tmp_path, caplog):
    """Landed but not read this run: a streams tenant's table with no FULL export yet waits for it;
    an exports tenant's stream files are never read. Neither is silent."""
    from tenantlake.cli import local_lake

    landing, state = LocalStore(tmp_path / "landing"), LocalStore(tmp_path / "lake")
    landing.put("tenant=agency-001/table=Payment/streams/firehose/2026/11/01/00/f-1", b"{}")
    lake = local_lake(tmp_path / "lake")
    exports_tenant = registry.tenant("agency-001").model_copy(update={"change_source": "exports"})
    with caplog.at_level("WARNING", logger="tenantlake.sync"):
        assert sync.plan_local(landing, lake, state, exports_tenant, "Payment").streams == []
        streams_tenant = exports_tenant.model_copy(update={"change_source": "streams"})
        assert sync.plan_local(landing, lake, state, streams_tenant, "Payment").streams == []
    said = [r.getMessage() for r in caplog.records]
    key = "tenant=agency-001/table=Payment/streams/firehose/2026/11/01/00/f-1"
    assert said == [f"agency-001 Payment: 1 stream file(s) are not read: the registry's change_source for this "
                    f"tenant is exports (first: {key})",
                    f"agency-001 Payment: 1 stream file(s) wait for the table's first FULL export (changes apply "
                    f"to a snapshot) (first: {key})"]
