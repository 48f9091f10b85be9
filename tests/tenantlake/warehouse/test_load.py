"""The set-based load on the embedded default, with hand-written batches: latest-wins per (tenant,
key) across every batch of a load and across loads, exactly-once, bad batches left out while the
others load, and a 400 KB item held whole."""


import pytest

from tenantlake.lake.batches import LoadBatch
from tests.tenantlake.warehouse.conftest import at


def current(w, entity="debt", cols="tenant_id, id, balance, _removed, is_deleted, _export_id"):
    return {tuple(r.values())[:2]: r for r in w.query(f"SELECT {cols} FROM core.current_{entity} ORDER BY 1, 2")}


def debt(i, balance, **more):
    return {"id": f"d{i}", "consumer_id": "c1", "balance": balance, **more}


def test_latest_wins_across_every_batch_of_one_load(fresh, lake):
    w = fresh()
    lake.publish("agency-001", "Debt", "e1", [debt(1, 100), debt(2, 10)])
    lake.publish("agency-001", "Debt", "e2", [debt(1, 200, _op="modify", _event_ts=at(2))], "INCREMENTAL_EXPORT")
    lake.publish("agency-001", "Debt", "e3", [debt(1, 150, _op="modify", _event_ts=at(1))], "INCREMENTAL_EXPORT")
    report = w.load(lake.batches)
    assert report.loaded == 3 and report.failed == [] and report.problems == []
    rows = current(w)
    assert rows[("agency-001", "d1")]["balance"] == 200 and rows[("agency-001", "d2")]["balance"] == 10
    assert w.query("SELECT COUNT(*) AS n FROM core.history_debt")[0]["n"] == 4  # every version kept


def test_a_late_batch_never_overwrites_a_newer_row(fresh, lake):
    w = fresh()
    newer = lake.publish("agency-001", "Debt", "e2", [debt(1, 200, _op="modify", _event_ts=at(5))])
    older = lake.publish("agency-001", "Debt", "e1", [debt(1, 100, _event_ts=at(1))])
    w.load([newer])
    w.load([older])  # arrives late, in a later run
    assert current(w)[("agency-001", "d1")]["balance"] == 200
    assert w.query("SELECT COUNT(*) AS n FROM core.history_debt")[0]["n"] == 2


@pytest.mark.parametrize("order", [("snap", "change"), ("change", "snap")])
def test_a_change_beats_a_snapshot_of_the_same_instant_whatever_the_order(fresh, lake, order):
    w = fresh()
    b = {"snap": lake.publish("agency-001", "Debt", "full", [debt(1, 100, _event_ts=at(3))]),
         "change": lake.publish("agency-001", "Debt", "inc", [debt(1, 300, _op="modify", _event_ts=at(3))])}
    for name in order:
        w.load([b[name]])
    assert current(w)[("agency-001", "d1")]["balance"] == 300


@pytest.mark.parametrize("order", [("first", "second"), ("second", "first")])
def test_of_two_firehose_changes_in_one_millisecond_the_later_file_wins(fresh, lake, order):
    """Firehose records carry no sequence number: at the same time, the file landed later (its key
    sorts after) holds the later change, whatever line each is on."""
    w = fresh()
    folder = "tenant=agency-001/table=Debt/streams/firehose/2026/11/01/00/"

    def change(i, balance, second):
        return debt(i, balance, _op="modify", _event_ts=at(3), _source_file=f"{folder}f-2026-11-01-00-00-0{second}")

    b = {"first": lake.publish("agency-001", "Debt", "s9", [change(9, 1, 1), change(1, 111, 1)], "STREAM_FIREHOSE"),
         "second": lake.publish("agency-001", "Debt", "s1", [change(1, 222, 2)], "STREAM_FIREHOSE")}  # line 1
    for name in order:
        w.load([b[name]])
    assert current(w)[("agency-001", "d1")]["balance"] == 222


def test_removes_and_soft_deletes_stay_as_marked_rows(fresh, lake, registry):
    w = fresh()
    lake.publish("agency-001", "Debt", "e1", [debt(1, 100), debt(2, 50), debt(3, 7)])
    lake.publish("agency-001", "Debt", "e2", [
        {"id": "d1", "_op": "remove", "_event_ts": at(1)},
        debt(2, 50, is_deleted=True, _op="modify", _event_ts=at(1))], "INCREMENTAL_EXPORT")
    w.load(lake.batches)
    rows = current(w)
    assert (rows[("agency-001", "d1")]["_removed"], rows[("agency-001", "d2")]["is_deleted"]) == (True, True)
    w.refresh(registry)
    snap = w.query("SELECT live_debts, debt_balance FROM mart.agency_snapshot WHERE tenant_id = 'agency-001'")[0]
    assert (snap["live_debts"], snap["debt_balance"]) == (1, 7)


def test_a_replay_changes_nothing(fresh, lake):
    w = fresh()
    lake.publish("agency-001", "Debt", "e1", [debt(1, 100)])
    lake.publish("agency-002", "Debt", "e1", [debt(1, 5)])
    assert w.load(lake.batches).loaded == 2
    before = w.query("SELECT * FROM core.history_debt ORDER BY tenant_id"), current(w)
    again = w.load(lake.batches + lake.batches)  # handed twice in one run, and again in another
    assert (again.loaded, again.skipped) == (0, 2)
    assert (w.query("SELECT * FROM core.history_debt ORDER BY tenant_id"), current(w)) == before


def test_the_same_id_in_two_agencies_is_two_items(fresh, lake):
    w = fresh()
    lake.publish("agency-001", "Debt", "e1", [debt(1, 100, _event_ts=at(1))])
    lake.publish("agency-002", "Debt", "e7", [debt(1, 999, _event_ts=at(2))])
    w.load(lake.batches)
    rows = current(w)
    assert rows[("agency-001", "d1")]["balance"] == 100 and rows[("agency-002", "d1")]["balance"] == 999


def test_a_batch_failing_its_checks_is_left_out_and_reported_while_the_others_load(fresh, lake):
    w = fresh()
    good = lake.publish("agency-001", "Debt", "e1", [debt(1, 100)])
    bad = lake.publish("agency-002", "Debt", "e1", [debt(1, 5), debt(2, 6)])
    claims_more = LoadBatch(bad.tenant_id, bad.entity, bad.export_id, bad.kind, 3, bad.files)  # the lake says 3
    report = w.load([good, claims_more])
    assert report.loaded == 1 and [(o.tenant_id, o.reason) for o in report.failed] == [
        ("agency-002", "staged 2 rows, the lake published 3")]
    assert set(current(w)) == {("agency-001", "d1")}
    assert w.query("SELECT tenant_id FROM ops.load_audit") == [{"tenant_id": "agency-001"}]
    assert w.load([bad]).loaded == 1  # the batch as the lake really published it loads later


def test_rows_of_no_batch_handed_in_are_left_out_and_named(fresh, lake):
    w = fresh()
    mixed = lake.publish("agency-001", "Debt", "e1", [debt(1, 100), debt(2, 1, _export_id="e-other")])
    report = w.load([LoadBatch("agency-001", "Debt", "e1", "FULL_EXPORT", 1, mixed.files)])
    assert report.loaded == 1
    assert report.problems == ["Debt: 1 rows of agency-001 export e-other came with no batch handed in; left out"]
    assert set(current(w)) == {("agency-001", "d1")}


def test_a_400_kb_item_is_held_whole(fresh, lake):
    """A nested column holds a 400 KB item's values whole, through stage, history, current and the
    protected lake view (`_extra` never leaves raw: see tenantlake.privacy)."""
    w = fresh()
    tags = [f"{i:06d} " + "x" * 1000 for i in range(400)]
    assert sum(map(len, tags)) > 400_000
    lake.publish("agency-001", "Debt", "e1", [debt(1, 100, tags=tags)])
    w.register_lake(lake.raw, lake.protected)
    assert w.load(lake.batches).loaded == 1
    for relation in ("core.history_debt", "core.current_debt", "lake_protected.debt"):
        (row,) = w.query(f"SELECT tags FROM {relation}")
        assert list(row["tags"]) == tags, relation
    assert not [t for t in w.catalogue if "_extra" in t.column_names and t.schema != "lake"]  # raw only


def test_one_read_of_every_new_file_per_entity(fresh, lake, monkeypatch):
    w = fresh()
    for t in ("agency-001", "agency-002", "agency-003"):
        for x in ("e1", "e2"):
            lake.publish(t, "Debt", x, [debt(1, 1, _event_ts=at(int(x[1])))])
        lake.publish(t, "Plan", "p1", [{"id": "p1", "consumer_id": "c1", "status": "ACTIVE"}])
    calls = []
    real = w._stage_files
    monkeypatch.setattr(w, "_stage_files", lambda entity, files: calls.append((entity, len(files))) or
                        real(entity, files))
    assert w.load(lake.batches).loaded == 9
    assert calls == [("Debt", 6), ("Plan", 3)]
    assert w.query("SELECT COUNT(*) AS n FROM ops.load_audit")[0]["n"] == 9


def test_the_embedded_warehouse_memory_is_bounded_by_a_setting(tmp_path, monkeypatch):
    from tenantlake.loading import DUCKDB_MEMORY, open_warehouse
    from tenantlake.settings import Settings

    settings = Settings("local", str(tmp_path), str(tmp_path / "landing"), str(tmp_path / "lake"), "aws_default")
    limit = "SELECT current_setting('memory_limit') AS m"
    w = open_warehouse(settings)
    assert DUCKDB_MEMORY == "384MB" and w.query(limit)[0]["m"] == "366.2 MiB"  # DuckDB shows MB in MiB
    w.close()
    monkeypatch.setenv("TENANTLAKE_WAREHOUSE_MEMORY", "512MB")
    w = open_warehouse(settings)
    assert w.query(limit)[0]["m"] == "488.2 MiB"
    w.close()
    monkeypatch.setenv("TENANTLAKE_WAREHOUSE_MEMORY", "lots")
    with pytest.raises(ValueError, match=r"TENANTLAKE_WAREHOUSE_MEMORY: warehouse memory limit 'lots': not a size"):
        open_warehouse(settings)
