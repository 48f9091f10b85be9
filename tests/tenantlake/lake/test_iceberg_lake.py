"""The Iceberg lake: Write-Audit-Publish commits, replays, kill points, readers by snapshot,
compaction, expiry and orphan removal. Expected rows are written by hand in each test."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tenantlake.lake import publish as publish_module
from tenantlake.lake.catalog import BATCH_LOG
from tenantlake.lake.files import local_path
from tenantlake.lake.maintenance import compact, delete_rows, forget_history, remove_orphans, tenant_predicate
from tenantlake.lake.publish import Publication
from tenantlake.lake.read import current_files, live_keys, new_batches, read, scan
from tests.tenantlake.lake.conftest import debt_rows, staged


def ids(table):
    return sorted(table["id"].to_pylist()) if table is not None else []


def publish(lake, tmp_path, *tables, run="r1"):
    pub = Publication(lake, "Debt", run, str(tmp_path / "work"))
    os.makedirs(tmp_path / "work", exist_ok=True)
    for t in tables:
        pub.add(staged(tmp_path, t))
    return pub.commit()


def data_files_on_disk(tmp_path):
    return sorted(str(p) for p in (tmp_path / "lake").rglob("*.parquet"))


def test_a_publication_is_one_commit_per_zone_and_readable_by_snapshot(lake, tmp_path):
    done = publish(lake, tmp_path, debt_rows("agency-001", "e1", ["d1", "d2"]), debt_rows("agency-002", "e2", ["d9"]))
    assert done.published == [("agency-001", "e1"), ("agency-002", "e2")] and done.replayed == []
    raw = lake.table("raw", "Debt")
    assert len(raw.metadata.snapshots) == 1  # two batches, one commit
    assert raw.current_snapshot().summary["tenantlake.operation"] == "publish"
    assert ids(read(lake, "raw", "Debt", "agency-001")) == ["d1", "d2"]
    batches, snapshot = new_batches(lake, "Debt", None)
    assert [(b.tenant_id, b.export_id, b.rows) for b in batches] == [("agency-001", "e1", 2), ("agency-002", "e2", 1)]
    assert snapshot == lake.table("protected", "Debt").current_snapshot().snapshot_id
    protected = read(lake, "protected", "Debt")
    assert "consumer_id" not in protected.column_names and "consumer_key" in protected.column_names


def test_a_replayed_batch_is_recognised_and_skipped(lake, tmp_path):
    publish(lake, tmp_path, debt_rows("agency-001", "e1", ["d1", "d2"]))
    _, first = new_batches(lake, "Debt", None)
    again = publish(lake, tmp_path, debt_rows("agency-001", "e1", ["d1", "d2"]), debt_rows("agency-001", "e2", ["d3"]),
                    run="r2")
    assert again.replayed == [("agency-001", "e1")] and again.published == [("agency-001", "e2")]
    assert ids(read(lake, "raw", "Debt")) == ["d1", "d2", "d3"]  # not d1, d2 twice
    later, _ = new_batches(lake, "Debt", first)
    assert [b.export_id for b in later] == ["e2"]


@pytest.mark.parametrize("killed_before", ["raw", "protected"])
def test_a_publish_killed_between_commits_exposes_nothing_partial_and_completes_on_rerun(lake, tmp_path, monkeypatch,
                                                                                          killed_before):
    publish(lake, tmp_path, debt_rows("agency-001", "e0", ["d0"]))
    seen_before, snapshot = new_batches(lake, "Debt", None)
    real = publish_module.append_new_batches

    def dies(lake_, zone, *args):
        if zone == killed_before:
            raise KeyboardInterrupt("killed")
        return real(lake_, zone, *args)

    monkeypatch.setattr(publish_module, "append_new_batches", dies)
    with pytest.raises(KeyboardInterrupt):
        publish(lake, tmp_path, debt_rows("agency-001", "e1", ["d1", "d2"]), run="r2")
    # nothing of the batch is visible to the warehouse's reader; raw holds it whole or not at all
    assert new_batches(lake, "Debt", snapshot)[0] == []
    assert ids(read(lake, "raw", "Debt")) == (["d0", "d1", "d2"] if killed_before == "protected" else ["d0"])
    monkeypatch.setattr(publish_module, "append_new_batches", real)
    again = publish(lake, tmp_path, debt_rows("agency-001", "e1", ["d1", "d2"]), run="r2")
    assert again.published == [("agency-001", "e1")]
    assert ids(read(lake, "raw", "Debt")) == ["d0", "d1", "d2"]
    assert ids(read(lake, "protected", "Debt")) == ["d0", "d1", "d2"]
    assert [b.export_id for b in new_batches(lake, "Debt", snapshot)[0]] == ["e1"]


def test_files_moved_in_by_a_killed_publish_are_never_read_and_removed_as_orphans(lake, tmp_path, monkeypatch):
    publish(lake, tmp_path, debt_rows("agency-001", "e0", ["d0"]))
    monkeypatch.setattr(publish_module, "append_new_batches", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        publish(lake, tmp_path, debt_rows("agency-001", "e1", ["d1"]), run="r2")
    on_disk = data_files_on_disk(tmp_path)
    listed = {f.path for f in current_files(lake, "raw", "Debt")} | {f.path for f in current_files(lake, "protected", "Debt")}
    stray = [p for p in on_disk if p not in listed and "/data/" in p]
    assert stray  # the killed publish left files in the data folders...
    assert ids(read(lake, "raw", "Debt")) == ["d0"]  # ...that no reader sees
    raw = lake.table("raw", "Debt")
    assert remove_orphans(raw) == 0  # younger than the grace period: a publish may be mid-way
    assert remove_orphans(raw, now=datetime.now(UTC) + timedelta(days=1)) >= 1
    assert ids(read(lake, "raw", "Debt")) == ["d0"]


def test_compaction_keeps_every_row_and_readers_ignore_it(lake, tmp_path):
    for n in range(10):
        publish(lake, tmp_path, debt_rows("agency-001", f"e{n}", [f"d{n}"]), run=f"r{n}")
    _, before_snapshot = new_batches(lake, "Debt", None)
    rows_before = sorted(read(lake, "raw", "Debt").to_pylist(), key=lambda r: r["id"])
    done = compact(lake, "raw", "Debt", min_files=8, workdir=str(tmp_path))
    assert (done.files_before, done.files_after, done.partitions_compacted) == (10, 1, 1)
    assert sorted(read(lake, "raw", "Debt").to_pylist(), key=lambda r: r["id"]) == rows_before
    compact(lake, "protected", "Debt", min_files=8, workdir=str(tmp_path))
    assert new_batches(lake, "Debt", before_snapshot)[0] == []  # a compaction adds no batch
    again = publish(lake, tmp_path, debt_rows("agency-001", "e3", ["d3"]), run="r-replay")
    assert again.replayed == [("agency-001", "e3")]  # recognised inside the compacted file too


def test_the_scheduled_upkeep_runs_over_every_table_the_catalog_lists(lake, tmp_path):
    """What lake_maintenance and `tenantlake maintain` run: the catalog names tables in lower case
    ("debt"), which no contract is keyed by; upkeep failed on its first table before."""
    from tenantlake.lake.upkeep import upkeep

    for n in range(10):
        publish(lake, tmp_path, debt_rows("agency-001", f"e{n}", [f"d{n}"]), run=f"r{n}")
    rows_before = sorted(read(lake, "raw", "Debt").to_pylist(), key=lambda r: r["id"])
    log_before = sorted(read(lake, "ops", "batches").to_pylist(), key=lambda r: r["export_id"])
    figures = upkeep(lake)
    raw = figures["tenantlake_raw.debt"]
    assert (raw["files_before"], raw["files_after"], raw["partitions_compacted"]) == (10, 1, 1)
    assert sorted(read(lake, "raw", "Debt").to_pylist(), key=lambda r: r["id"]) == rows_before
    log = figures["tenantlake_ops.batches"]  # the log too: a file per commit, read by every scan
    assert (log["files_before"], log["files_after"]) == (10, 1)
    assert sorted(read(lake, "ops", "batches").to_pylist(), key=lambda r: r["export_id"]) == log_before


def test_deleting_rows_then_forgetting_history_leaves_no_file_holding_them(lake, tmp_path):
    publish(lake, tmp_path, debt_rows("agency-001", "e1", ["keep-1", "gone-1"]), debt_rows("agency-002", "e2", ["other"]))
    assert delete_rows(lake, "raw", "Debt", tenant_predicate("agency-001", id="gone-1"), "erase", "x") == 1
    time.sleep(0.01)
    expired, removed = forget_history(lake, "raw", "Debt")
    assert expired >= 1 and removed >= 1
    found = []
    for path in data_files_on_disk(tmp_path):
        if "tenantlake_raw" in path:
            found += pq.read_table(path)["id"].to_pylist() if "id" in pq.read_schema(path).names else []
    assert "gone-1" not in found and {"keep-1", "other"} <= set(found)
    raw = lake.table("raw", "Debt", refresh=True)
    for snapshot in raw.metadata.snapshots:  # manifests are compressed Avro: read them, do not grep them
        for manifest in snapshot.manifests(raw.io):
            for entry in manifest.fetch_manifest_entry(raw.io, discard_deleted=False):
                bounds = [*entry.data_file.lower_bounds.values(), *entry.data_file.upper_bounds.values()]
                assert not any(b"gone" in b for b in bounds), entry  # counts, never values
    for path in (tmp_path / "lake").rglob("*.json"):
        assert b"gone-1" not in path.read_bytes(), path
    assert ids(read(lake, "raw", "Debt", "agency-001")) == ["keep-1"]


def test_live_keys_follow_latest_wins(lake, tmp_path):
    publish(lake, tmp_path, debt_rows("agency-001", "e1", ["a", "b", "c"], day=1))
    publish(lake, tmp_path, debt_rows("agency-001", "e2", ["b"], day=2, op="remove"), run="r2")
    publish(lake, tmp_path, debt_rows("agency-001", "e3", ["c"], day=3, op="remove"),
            debt_rows("agency-002", "e4", ["z"]), run="r3")
    publish(lake, tmp_path, debt_rows("agency-001", "e5", ["c"], day=4, op="insert"), run="r4")
    assert live_keys(lake, "Debt", {"agency-001", "agency-002"}) == {"agency-001": {"a", "c"}, "agency-002": {"z"}}


@pytest.mark.parametrize("the_other_task_wins_at", ["create_namespace", "create_table_transaction"])
def test_two_tasks_creating_the_same_table_at_once_both_get_it(lake, tmp_path, the_other_task_wins_at):
    """The races of the services run: two sync tasks found no table and both created its namespace
    and the table; the loser's insert or commit was refused ('UNIQUE constraint failed',
    'Table already exists') and failed its task."""
    import sqlite3

    from sqlalchemy.exc import IntegrityError

    from tenantlake.lake import Lake, LakeConfig, open_catalog

    other = Lake(open_catalog("sql", uri=f"sqlite:///{tmp_path}/catalog/iceberg.db", warehouse=str(tmp_path / "lake")),
                 LakeConfig(str(tmp_path / "lake")))
    real = getattr(lake.catalog, the_other_task_wins_at)

    def the_other_task_wins(*args, **kwargs):
        setattr(lake.catalog, the_other_task_wins_at, real)
        if the_other_task_wins_at == "create_namespace":  # between the catalog's check and its insert
            other.table("raw", "Debt")
            raise IntegrityError("INSERT INTO iceberg_namespace_properties", {},
                                 sqlite3.IntegrityError("UNIQUE constraint failed"))
        tx = real(*args, **kwargs)  # this task stages its create...
        other.table("raw", "Debt")  # ...the other task's commits first, and the catalog refuses this one
        return tx

    setattr(lake.catalog, the_other_task_wins_at, the_other_task_wins)
    table = lake.table("raw", "Debt")
    assert table.metadata.table_uuid == other.table("raw", "Debt").metadata.table_uuid
    assert "balance" in table.schema().column_names and table.spec().fields


def test_tasks_opening_a_new_catalog_at_once_all_open_it(tmp_path, monkeypatch):
    """The other race of a first run: every task found the new catalog's tables missing and created
    them; the losers failed on 'table iceberg_tables already exists'."""
    import sqlite3

    from pyiceberg.catalog.sql import SqlCatalog
    from sqlalchemy.exc import OperationalError

    from tenantlake.lake import open_catalog

    uri = f"sqlite:///{tmp_path}/catalog/iceberg.db"
    real = SqlCatalog.create_tables

    def another_task_created_them_first(self):
        # the winner creates them between this task's check and its CREATE TABLE, which then fails
        # as it did in the services run (SQLAlchemy's own check-first is just as racy)
        monkeypatch.setattr(SqlCatalog, "create_tables", real)
        open_catalog("sql", uri=uri, warehouse=str(tmp_path))
        raise OperationalError("CREATE TABLE iceberg_tables", {},
                               sqlite3.OperationalError("table iceberg_tables already exists"))

    monkeypatch.setattr(SqlCatalog, "create_tables", another_task_created_them_first)
    catalog = open_catalog("sql", uri=uri, warehouse=str(tmp_path))
    assert catalog.list_namespaces() == []


def test_hourly_commits_keep_the_batch_log_cheap_to_commit_and_to_scan(lake, tmp_path, monkeypatch):
    """Every commit rewrites a table's metadata with each snapshot kept, and every scan reads each
    manifest of the current snapshot: a fleet's shard commits made both grow by the hour. The log
    keeps its newest snapshots only, its manifests are merged (past Iceberg's 100 by default), and
    every row stays readable; the zones keep their history for time travel."""
    monkeypatch.setattr(publish_module, "LOG_SNAPSHOTS_KEPT", 4)
    for i in range(3):
        publish(lake, tmp_path, debt_rows("agency-001", f"e{i}", [f"d{i}"]), run=f"r{i}")
    row = {"tenant_id": "agency-001", "entity": "Debt", "kind": "FULL_EXPORT", "outcome": "published", "items": 1}
    for i in range(3, 110):
        publish_module.log_batches(lake, [dict(row, export_id=f"e{i}")], f"r{i}", str(tmp_path / "work"))
        log = lake.table("ops", "batches", refresh=True)
        assert len(log.metadata.snapshots) < 2 * 4
    assert len(log.current_snapshot().manifests(log.io)) < 100
    rows = read(lake, "ops", "batches").to_pylist()
    assert sorted(r["export_id"] for r in rows) == sorted(f"e{i}" for i in range(110))
    assert len(lake.table("raw", "Debt").metadata.snapshots) == 3
    assert ids(read(lake, "raw", "Debt")) == ["d0", "d1", "d2"]


def test_a_batch_another_run_published_between_the_check_and_the_commit_is_not_published_twice(lake, tmp_path,
                                                                                                monkeypatch):
    """A manual re-run beside the scheduled one: both found the batch absent, and both committed it,
    so raw held every row twice (independent probe). The commit asks again once the table moved on."""
    publish(lake, tmp_path, debt_rows("agency-001", "e0", ["d0"]))
    real, raced = publish_module.append_new_batches, []

    def other_run_first(lake_, zone, *args):
        if not raced:  # the other run publishes the same batch just before this one commits
            raced.append(True)
            publish(lake, tmp_path / "other", debt_rows("agency-001", "e1", ["d1", "d2"]), run="other")
        return real(lake_, zone, *args)

    monkeypatch.setattr(publish_module, "append_new_batches", other_run_first)
    mine = publish(lake, tmp_path, debt_rows("agency-001", "e1", ["d1", "d2"]), run="r2")
    assert ids(read(lake, "raw", "Debt")) == ["d0", "d1", "d2"]
    assert ids(read(lake, "protected", "Debt")) == ["d0", "d1", "d2"]
    assert mine.replayed == [("agency-001", "e1")] and mine.published == []


def test_two_runs_committing_the_same_batch_from_one_snapshot_hold_it_once(lake, tmp_path, monkeypatch):
    """Both runs checked, both loaded the table for their commit, the other committed first: pyiceberg
    would rebase this run's append on the new snapshot and hold the batch twice (independent probe,
    two runs of one tenant at once). The conflict reaches our retry, which asks the new snapshot."""
    publish(lake, tmp_path, debt_rows("agency-001", "e0", ["d0"]))
    real, raced = publish_module._append, []

    def other_commits_first(table, files, properties):
        if not raced:  # `table` is loaded: the other run commits before this one does
            raced.append(True)
            with monkeypatch.context() as m:  # and has not logged it yet: its log is its own to write
                m.setattr(publish_module, "log_batches", lambda *a: None)
                publish(lake, tmp_path / "other", debt_rows("agency-001", "e1", ["d1", "d2"]), run="other")
        return real(table, files, properties)

    monkeypatch.setattr(publish_module, "_append", other_commits_first)
    mine = publish(lake, tmp_path, debt_rows("agency-001", "e1", ["d1", "d2"]), run="r2")
    assert scan(lake, "ops", BATCH_LOG, None, ("export_id", "run_id"))["run_id"].to_pylist() == ["r1"]  # e0 only
    assert ids(read(lake, "raw", "Debt")) == ["d0", "d1", "d2"]
    assert ids(read(lake, "protected", "Debt")) == ["d0", "d1", "d2"]
    assert mine.replayed == [("agency-001", "e1")] and mine.published == []


def test_an_entity_table_made_before_no_rebase_gets_it_when_opened(lake):
    """Deployed lakes' tables were made with pyiceberg's rebasing retries on: opening one turns them
    off; the batch log keeps them (its commits are plain appends, which rebase rightly)."""
    from tenantlake.lake.catalog import NO_REBASE, Lake

    raw = lake.table("raw", "Debt")
    with raw.transaction() as tx:
        tx.remove_properties(*NO_REBASE)
    assert "commit.retry.num-retries" not in lake.load("raw", "Debt").properties
    reopened = Lake(lake.catalog, lake.config)
    assert reopened.table("raw", "Debt").properties["commit.retry.num-retries"] == "0"
    assert "commit.retry.num-retries" not in reopened.table("ops", "batches").properties


def test_a_publish_killed_before_its_log_commit_is_logged_by_the_rerun_once(lake, tmp_path, monkeypatch):
    """Every zone held the batch, the log did not: the rerun saw a replay, and replays were never
    logged, so backfill, stream reading and status never knew of it (independent probe)."""
    def logged():
        rows = scan(lake, "ops", BATCH_LOG, None, ("export_id", "outcome", "run_id"))
        return sorted(zip(*(rows[c].to_pylist() for c in ("export_id", "outcome", "run_id")), strict=True)) if rows else []

    real = publish_module.log_batches
    monkeypatch.setattr(publish_module, "log_batches", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        publish(lake, tmp_path, debt_rows("agency-001", "e1", ["d1"]), run="r1")
    monkeypatch.setattr(publish_module, "log_batches", real)
    assert logged() == []
    again = publish(lake, tmp_path, debt_rows("agency-001", "e1", ["d1"]), run="r2")
    assert again.replayed == [("agency-001", "e1")]
    assert logged() == [("e1", "published", "r2")]
    # with the bytes it stores, as a log row written by the run that committed it would say: the
    # Parquet files in raw's and protected's data folders (the batch is all they hold)
    on_disk = sum(f.stat().st_size for zone in ("raw", "protected")
                  for f in Path(local_path(lake.load(zone, "Debt").location())).rglob("*.parquet"))
    assert scan(lake, "ops", BATCH_LOG, None, ("bytes_stored",))["bytes_stored"].to_pylist() == [on_disk] != [0]
    publish(lake, tmp_path, debt_rows("agency-001", "e1", ["d1"]), run="r3")  # logged now: not again
    assert logged() == [("e1", "published", "r2")]
