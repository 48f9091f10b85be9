"""A simulated fleet through lake and warehouse, shared by the warehouse tests (built once)."""

import json

import pytest

from tenantlake import sync
from tenantlake.pseudonyms import local_key
from tenantlake.storage import LocalStore
from tenantlake.warehouse import DuckDBWarehouse, load_lake
from tenantlake_dev.simulate import FleetSpec, simulate_fleet

TENANTS = ["agency-001", "agency-002", "agency-003"]


@pytest.fixture(scope="session")
def world(tmp_path_factory, registry):
    home = tmp_path_factory.mktemp("golden")
    simulate_fleet(registry.tenants[:3], FleetSpec(consumers=220, days=6, warmup_days=60, seed=17), home, workers=1)
    landing, lake = LocalStore(home / "landing"), LocalStore(home / "lake")
    for tid in TENANTS:
        for entity in registry.tenant(tid).tables:
            sync.sync_landed(landing, lake, registry.tenant(tid), entity, "golden")
    truth = json.loads((home / "truth/aggregates.json").read_text())
    return home, lake, truth


@pytest.fixture(scope="session")
def wh(world, registry):
    home, lake, _ = world
    warehouse = DuckDBWarehouse(str(home / "wh.duckdb"), lambda t: local_key(home, t))
    result = load_lake(warehouse, lake, registry, TENANTS)
    assert result["failed"] == {} and result["loaded"] > 0
    yield warehouse
    warehouse.close()


