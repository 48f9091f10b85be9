"""What a run is handed from the Iceberg lake (tenantlake.warehouse.lake_source): the protected
zone's batches published after the warehouse's cursor, and the zones' current files. Batches are
published here through the lake's own Write-Audit-Publish (tenantlake.lake.publish)."""

from decimal import Decimal

import pyarrow.parquet as pq
import pytest

from tenantlake.contracts import ENTITIES
from tenantlake.lake import Lake, LakeConfig, open_catalog
from tenantlake.lake.publish import Publication, StagedBatch
from tenantlake.privacy import protect
from tenantlake.warehouse import lake_source
from tests.tenantlake.warehouse.conftest import KEYS, T0, at, raw_rows


@pytest.fixture
def iceberg(tmp_path) -> Lake:
    root = tmp_path / "lake"
    catalog = open_catalog("sql", uri=f"sqlite:///{tmp_path}/catalog.db", warehouse=str(root))
    return Lake(catalog, LakeConfig(str(root), "tenantlake"))


def publish(lake: Lake, tmp_path, tenant: str, export_id: str, items: list[dict]) -> None:
    rows = raw_rows("Debt", tenant, export_id, items)
    parts = {}
    for zone, table in (("raw", rows), ("protected", protect(rows, ENTITIES["Debt"], KEYS.__getitem__))):
        parts[zone] = str(tmp_path / f"{zone}-{tenant}-{export_id}.parquet")
        pq.write_table(table, parts[zone])
    p = Publication(lake, "Debt", f"run-{export_id}", workdir=str(tmp_path))
    p.add(StagedBatch(tenant, "Debt", export_id, "INCREMENTAL_EXPORT", f"{export_id}/manifest-summary.json",
                      rows.num_rows, int(T0.timestamp() * 1e6), raw_parts=[parts["raw"]],
                      protected_parts=[parts["protected"]], rows=rows.num_rows))
    p.commit()


def test_a_run_is_handed_what_was_published_since_the_last_one(iceberg, tmp_path, fresh, registry):
    w = fresh()
    publish(iceberg, tmp_path, "agency-001", "e1", [{"id": "d1", "consumer_id": "c1", "balance": Decimal(10)}])
    publish(iceberg, tmp_path, "agency-002", "e1", [{"id": "d1", "consumer_id": "c2", "balance": Decimal(20)},
                                                    {"id": "d2", "consumer_id": "c2", "balance": Decimal(5)}])
    batches, cursors = lake_source.new_batches(iceberg, w, ["Debt"])
    assert sorted((b.tenant_id, b.export_id, b.rows) for b in batches) == [("agency-001", "e1", 1),
                                                                           ("agency-002", "e1", 2)]
    w.register_lake(*lake_source.current_files(iceberg, ["Debt"]))
    assert w.load(batches, cursors=cursors).loaded == 2
    w.refresh(registry)
    assert w.check() == []
    assert lake_source.new_batches(iceberg, w, ["Debt"]) == ([], {})  # nothing new since the cursor
    publish(iceberg, tmp_path, "agency-001", "e2", [{"id": "d1", "consumer_id": "c1", "balance": Decimal(11),
                                                     "_op": "modify", "_event_ts": at(2)}])
    batches, cursors = lake_source.new_batches(iceberg, w, ["Debt"])
    assert [(b.tenant_id, b.export_id) for b in batches] == [("agency-001", "e2")]
    w.register_lake(*lake_source.current_files(iceberg, ["Debt"]))
    assert w.load(batches, cursors=cursors).loaded == 1
    w.refresh(registry)
    assert w.check() == []
    assert w.query("SELECT tenant_id, debt_balance FROM mart.agency_snapshot WHERE live_debts > 0 "
                   "ORDER BY tenant_id") == [{"tenant_id": "agency-001", "debt_balance": Decimal(11)},
                                             {"tenant_id": "agency-002", "debt_balance": Decimal(25)}]


def test_a_reload_reads_the_current_files_after_rewrites_and_expiry(iceberg, tmp_path):
    """A reload (all_batches) hands the tenant's rows as the current snapshot holds them: after a
    compaction rewrote its files and the snapshots before were expired, every row is there, from
    the rewritten file (walking the published snapshots gave the replaced files, or after expiry
    next to nothing, and a reload then emptied the tenant: found by an independent test)."""
    from tenantlake.lake.maintenance import compact, forget_history

    for n in range(3):
        publish(iceberg, tmp_path, "agency-001", f"e{n}", [{"id": f"d{n}", "consumer_id": "c1", "balance": Decimal(n)}])
    publish(iceberg, tmp_path, "agency-002", "e0", [{"id": "d9", "consumer_id": "c9", "balance": Decimal(9)}])
    compact(iceberg, "protected", "Debt", min_files=2, workdir=str(tmp_path))
    forget_history(iceberg, "protected", "Debt")
    current = {t.file.file_path for t in iceberg.load("protected", "Debt").scan().plan_files()}
    batches = lake_source.all_batches(iceberg, "agency-001", ["Debt"])
    assert sorted(b.export_id for b in batches) == ["e0", "e1", "e2"]
    files = {f.path for b in batches for f in b.files}
    assert files <= current and len(files) == 1  # the one compacted file, which holds all three batches
    assert sum(pq.read_table(p).num_rows for p in files) == 3


def test_a_view_over_unchanged_lake_files_is_not_bound_again(iceberg, tmp_path, fresh, monkeypatch):
    """Binding lake.* over every current file cost ~10 s a run at 22,000 files, even when nothing
    changed (an independent fleet test): a view whose files are the same is left as it is, and one
    whose files changed is rebuilt and reads them."""
    w = fresh()
    publish(iceberg, tmp_path, "agency-001", "e1", [{"id": "d1", "consumer_id": "c1", "balance": Decimal(10)}])
    w.register_lake(*lake_source.current_files(iceberg, ["Debt"]))
    executed = []
    real = w._execute
    monkeypatch.setattr(w, "_execute", lambda sql, params=(): executed.append(sql) or real(sql, params))
    w.register_lake(*lake_source.current_files(iceberg, ["Debt"]))
    assert not [s for s in executed if "CREATE OR REPLACE VIEW" in s]
    publish(iceberg, tmp_path, "agency-001", "e2", [{"id": "d2", "consumer_id": "c1", "balance": Decimal(5)}])
    w.register_lake(*lake_source.current_files(iceberg, ["Debt"]))
    assert {s.split(" AS ")[0] for s in executed if "CREATE OR REPLACE VIEW" in s} == {
        "CREATE OR REPLACE VIEW lake.debt", "CREATE OR REPLACE VIEW lake_protected_ext.debt"}
    assert sorted(r["id"] for r in w.query("SELECT id FROM lake_protected.debt")) == ["d1", "d2"]
