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


def test_nothing_landed_yet_is_nothing_to_do():
    assert pending([], None, False) == [] and pending(INC, None, False) == []


def test_stream_files_are_picked_up_once(fleet, registry, tmp_path):
    out, _ = fleet
    landing, lake = LocalStore(out / "landing"), LocalStore(tmp_path / "lake")
    tenant = registry.tenant("agency-001")
    files = landing.list("tenant=agency-001/table=Payment/streams/")
    first = sync.sync_streams(landing, lake, tenant, "Payment", "r1")
    assert len(first.batches) == len(files) > 0
    assert {b["kind"] for b in first.batches} == {"STREAM_PIPES", "STREAM_FIREHOSE"}
    assert sync.sync_streams(landing, lake, tenant, "Payment", "r2").batches == []
