"""Backfill: exactly the windows of a past range that are not published yet, within DynamoDB's
35-day point-in-time window, idempotent, never moving a watermark back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pyiceberg.expressions import And, EqualTo

from tenantlake import sync, watermarks
from tenantlake.exports import backfill_requests, check_backfill_range, missing
from tenantlake.storage import LocalStore

T = datetime(2026, 11, 1, tzinfo=UTC)
H = timedelta(hours=1)


def test_missing_is_the_range_minus_what_is_covered():
    covered = [(T + H, T + 2 * H), (T + 3 * H, T + 4 * H), (T + 10 * H, T + 11 * H)]
    assert missing(T, T + 5 * H, covered) == [(T, T + H), (T + 2 * H, T + 3 * H), (T + 4 * H, T + 5 * H)]
    assert missing(T + H, T + 2 * H, covered) == []
    assert missing(T, T + H, []) == [(T, T + H)]


def test_backfill_asks_for_windows_of_the_gaps_only():
    reqs = backfill_requests("agency-001", "Debt", T, T + 6 * H, 2 * H, [(T + 2 * H, T + 4 * H)])
    assert [(r.from_time, r.to_time) for r in reqs] == [(T, T + 2 * H), (T + 4 * H, T + 6 * H)]
    assert {r.kind for r in reqs} == {"INCREMENTAL_EXPORT"}


def test_a_range_outside_pitr_or_in_the_future_is_refused():
    now = T + 40 * 24 * H
    check_backfill_range(now - 30 * 24 * H, now - 29 * 24 * H, now)
    with pytest.raises(ValueError, match="35-day point-in-time window"):
        check_backfill_range(now - 36 * 24 * H, now - 30 * 24 * H, now)
    with pytest.raises(ValueError, match="future"):
        check_backfill_range(now - H, now + H, now)
    with pytest.raises(ValueError, match="empty"):
        check_backfill_range(now - H, now - H, now)


def test_a_lost_window_is_backfilled_once_and_the_watermark_stays(fleet, registry, tmp_path):
    from tenantlake.cli import local_lake

    out, _ = fleet
    landing, state = LocalStore(out / "landing"), LocalStore(tmp_path / "lake")
    lake = local_lake(tmp_path / "lake")
    tenant = registry.tenant("agency-001")
    work = sync.plan_local(landing, lake, state, tenant, "Debt")
    done = sync.sync_shard(landing, lake, state, "Debt", [work], "r1", lambda t: b"k" * 32)[0]
    assert done.error is None
    mark = watermarks.read(state, "agency-001", "Debt")
    start, end = datetime(2026, 10, 1, tzinfo=UTC), datetime.fromtimestamp(mark.to_us / 1e6, UTC)
    assert sync.plan_backfill_local(landing, lake, tenant, "Debt", start, end).exports == []  # nothing missing

    # a window the lake lost (its rows and its log entry gone), as if its export had never been read
    windows = sorted(sync.published_windows(lake, "Debt", "agency-001"))
    lost_from, lost_to = windows[1]
    log = lake.table("ops", "batches", refresh=True)
    lost = [r for r in log.scan().to_arrow().to_pylist() if r["window_from"] == lost_from]
    assert len(lost) == 1
    log.delete(And(EqualTo("tenant_id", "agency-001"), EqualTo("export_id", lost[0]["export_id"])))
    for zone in ("raw", "protected"):
        lake.table(zone, "Debt", refresh=True).delete(EqualTo("_export_id", lost[0]["export_id"]))

    work = sync.plan_backfill_local(landing, lake, tenant, "Debt", start, end)
    assert work.exports == [lost[0]["source"]]  # exactly the missing window
    again = sync.sync_shard(landing, lake, state, "Debt", [work], "backfill", lambda t: b"k" * 32)[0]
    assert again.error is None and [b["export_id"] for b in again.batches] == [lost[0]["export_id"]]
    assert watermarks.read(state, "agency-001", "Debt") == mark  # a past window never moves it back
    assert sync.plan_backfill_local(landing, lake, tenant, "Debt", start, end).exports == []  # idempotent


def _window(n: int, frm: int, to: int) -> sync.Landed:
    us = int(T.timestamp() * 1e6)
    return sync.Landed(f"t/AWSDynamoDB/0{n}-inc/manifest-summary.json", "INCREMENTAL_EXPORT", us + frm * 3_600_000_000,
                       us + to * 3_600_000_000)


def test_a_wider_window_exported_again_over_a_lost_range_is_taken_and_a_reexport_wins_over_the_first():
    """Taken in end order, the hourly window after the hole was met first: a false gap for ever
    (independent probe). Of the windows that carry on from the watermark, the one reaching
    furthest is taken; of one window exported twice, the later export (a re-export of a broken one)."""
    full = sync.Landed("t/AWSDynamoDB/00-full/manifest-summary.json", "FULL_EXPORT", None, int(T.timestamp() * 1e6))
    mark = watermarks.Watermark(full.to_us, "full", "FULL_EXPORT")
    wide = _window(9, 0, 3)
    landed = sorted([full, _window(2, 1, 2), _window(3, 2, 3), wide, _window(4, 3, 4)],
                    key=lambda e: (e.to_us, e.kind != "FULL_EXPORT"))
    assert [e.summary_key for e in sync.pending(landed, mark, False)] == [wide.summary_key, _window(4, 3, 4).summary_key]
    broken, again = _window(1, 0, 1), _window(5, 0, 1)
    assert sync.pending([full, broken, again], mark, False) == [again]
    gaps: list[str] = []
    assert sync.pending([full, _window(2, 1, 2)], mark, False, gaps=gaps) == [] and "gap in incremental" in gaps[0]


def test_a_backfilled_window_moves_the_watermark_only_where_it_carries_on_from_it():
    """A backfill past a gap moved the watermark over the hole, and the missing window, landing
    later, was skipped for good; one before the first full export set a watermark, and the full
    export was never read (independent probe)."""
    from types import SimpleNamespace

    mark = watermarks.Watermark(int((T + H).timestamp() * 1e6), "w1", "INCREMENTAL_EXPORT")

    def window(frm):
        return SimpleNamespace(kind="INCREMENTAL_EXPORT", window_from_us=int((T + frm * H).timestamp() * 1e6))
    assert sync._carries_on(mark, window(1)) and sync._carries_on(mark, window(0))  # on, or overlapping
    assert not sync._carries_on(mark, window(2))  # past a gap
    assert not sync._carries_on(None, window(0))  # before the first full export
    assert sync._carries_on(None, SimpleNamespace(kind="FULL_EXPORT", window_from_us=None))
