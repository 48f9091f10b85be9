"""A simulated fleet through a lake and the warehouse, shared by the warehouse tests (built once);
and a fresh, empty warehouse per test, copied from one made once (creating the ~100 tables and
their ~900 comments takes seconds; copying the file, milliseconds)."""

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from tenantlake.contracts import ENTITIES
from tenantlake.formats.rows import lake_schema
from tenantlake.pseudonyms import local_key
from tenantlake.storage import LocalStore
from tenantlake.warehouse.duckdb import DuckDBWarehouse
from tenantlake_dev.simulate import FleetSpec, simulate_fleet
from tests.tenantlake.warehouse.lake_fixture import TestLake, lake_from_landing

TENANTS = ["agency-001", "agency-002", "agency-003"]
KEYS = {t: bytes([i]) * 32 for i, t in enumerate(["agency-001", "agency-002", "agency-003", "agency-004"], 1)}


@pytest.fixture(scope="session")
def world(tmp_path_factory, registry):
    """(home, the lake folder, the simulator's truth); the lake's batches: `golden_lake`."""
    home = tmp_path_factory.mktemp("golden")
    simulate_fleet(registry.tenants[:3], FleetSpec(consumers=220, days=6, warmup_days=60, seed=17), home, workers=1)
    truth = json.loads((home / "truth/aggregates.json").read_text())
    return home, LocalStore(home / "lake"), truth


@pytest.fixture(scope="session")
def golden_lake(world, registry):
    home, _, _ = world
    return lake_from_landing(home, registry.tenants[:3], lambda t: local_key(home, t))


@pytest.fixture(scope="session")
def empty_warehouse(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "empty.duckdb"
    DuckDBWarehouse(str(path)).close()
    return path


@pytest.fixture
def fresh(empty_warehouse, tmp_path):
    """A new, empty warehouse of its own (closed at the end)."""
    made = []

    def make(name: str = "wh.duckdb") -> DuckDBWarehouse:
        path = tmp_path / name
        shutil.copy(empty_warehouse, path)
        made.append(DuckDBWarehouse(str(path)))
        return made[-1]
    yield make
    for w in made:
        w.con.close()


@pytest.fixture(scope="session")
def wh(world, golden_lake, empty_warehouse, registry):
    home, _, _ = world
    shutil.copy(empty_warehouse, home / "wh.duckdb")
    warehouse = DuckDBWarehouse(str(home / "wh.duckdb"))
    warehouse.register_lake(golden_lake.raw, golden_lake.protected)
    result = warehouse.load(golden_lake.batches)
    assert result.failed == [] and result.problems == [] and result.loaded == len(golden_lake.batches)
    warehouse.refresh(registry)
    yield warehouse
    warehouse.close()


# ---- hand-written batches ----------------------------------------------------------------------

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def raw_rows(entity: str, tenant_id: str, export_id: str, items: list[dict]) -> pa.Table:
    """Lake rows of an entity from plain dicts: every column defaults to null, the lake's own
    columns to a snapshot of this export at T0, one line each."""
    schema = lake_schema(ENTITIES[entity])
    rows = []
    for i, item in enumerate(items, 1):
        row = {f.name: None for f in schema}
        row.update({"tenant_id": tenant_id, "_op": "snapshot", "_event_ts": T0, "_export_id": export_id,
                    "_source_file": f"{export_id}/data/part-0.json.gz", "_line": i})
        row.update(item)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema)


class Lake(TestLake):
    """A TestLake with hand-written batches: lake.publish("agency-001", "Debt", "e1", [{...}])."""

    def publish(self, tenant_id: str, entity: str, export_id: str, items: list[dict], kind: str = "FULL_EXPORT"):
        return self.add(tenant_id, entity, export_id, kind, raw_rows(entity, tenant_id, export_id, items),
                        KEYS.__getitem__)


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(Path(tmp_path) / "lake")
