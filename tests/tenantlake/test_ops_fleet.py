"""A small fleet whose state is known by construction, for the ops tests (health, status, the
tenant_health DAG, the UI plugin): a registry, batch-log rows written with the lake's own
`log_batches`, watermarks and a run summary, all relative to a `now`.

  agency-001  Debt ok (2h old, objective 26h), Plan ok (3h old, objective 8h)
  agency-002  Debt LATE: 29h old against 26h, late by 3h
  agency-003  Debt FAILING: its latest batch attempt failed (watermark 1h old); Plan failing
              because the latest run summary lists it (no batch was logged: the export was refused)
  agency-004  Debt NEVER: nothing published yet
  agency-005  Debt ok only thanks to its registry override (freshness: {Debt: 30h}; 28h old)

The tests at the bottom check the fixture itself, so a change to it that would make the
behaviour tests pass vacuously fails here first.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import yaml

from tenantlake import watermarks
from tenantlake.cli import local_lake
from tenantlake.lake.publish import log_batches
from tenantlake.registry import DEFAULT_PATH, load_registry
from tenantlake.storage import LocalStore

GIB = 1 << 30
LATE_TENANT, LATE_ENTITY, LATE_BY = "agency-002", "Debt", timedelta(hours=3)

# (tenant, entity, watermark age or None)
MARKS = [("agency-001", "Debt", timedelta(hours=2)), ("agency-001", "Plan", timedelta(hours=3)),
         ("agency-002", "Debt", timedelta(hours=26) + LATE_BY), ("agency-003", "Debt", timedelta(hours=1)),
         ("agency-005", "Debt", timedelta(hours=28))]
TABLES = {"agency-001": ["Debt", "Plan"], "agency-002": ["Debt"], "agency-003": ["Debt", "Plan"],
          "agency-004": ["Debt"], "agency-005": ["Debt"]}


def registry_doc() -> dict:
    """The shipped registry's first five agencies, cut to the fixture's tables."""
    doc = yaml.safe_load(DEFAULT_PATH.read_text())
    doc["tenants"] = doc["tenants"][:5]
    for t in doc["tenants"]:
        t["tables"] = {e: t["tables"][e] for e in TABLES[t["tenant_id"]]}
        t["export_window"] = "1h"
    doc["tenants"][4]["freshness"] = {"Debt": "30h"}
    return doc


def batch(tenant_id, entity, export_id, run_id, logged_at, *, outcome="published", kind="INCREMENTAL_EXPORT",
          items=0, rows=0, quarantined=0, bytes_exported=None, bytes_stored=0, drift=None, reason=None) -> dict:
    return {"tenant_id": tenant_id, "entity": entity, "export_id": export_id, "kind": kind, "source": f"{export_id}.json",
            "run_id": run_id, "outcome": outcome, "reason": reason, "items": items, "rows": rows,
            "quarantined": quarantined, "erased": 0, "inferred_deletes": 0, "files": 1 if rows else 0,
            "bytes_exported": bytes_exported, "bytes_stored": bytes_stored, "export_time": logged_at,
            "min_event_ts": None, "max_event_ts": None, "seconds": 1.0, "quality": None,
            "drift": orjson.dumps(drift).decode() if drift else None, "logged_at": logged_at}


def drift(path, what="new attribute") -> dict:
    return {"path": path, "type": "S", "what": what, "rows": 1, "first": 1, "last": 1}


def batches(now: datetime) -> list[dict]:
    """The batch log: a FULL export two days ago for agency-001 Debt, hourly increments since."""
    h = timedelta(hours=1)
    return [
        batch("agency-001", "Debt", "full-001", "run-a", now - 48 * h, kind="FULL_EXPORT", items=1000, rows=990,
              quarantined=10, bytes_exported=2 * GIB, bytes_stored=GIB),
        batch("agency-001", "Debt", "inc-001", "run-b", now - 3 * h, items=120, rows=118, quarantined=2,
              bytes_exported=GIB // 4, bytes_stored=GIB // 8, drift=[drift("nickname"), drift("bureau.score")]),
        batch("agency-001", "Debt", "inc-002", "run-c", now - 2 * h, items=40, rows=40,
              bytes_exported=GIB // 8, bytes_stored=GIB // 16, drift=[drift("nickname")]),
        batch("agency-001", "Plan", "inc-p1", "run-b", now - 3 * h, items=30, rows=30, bytes_exported=GIB // 8,
              bytes_stored=GIB // 16),
        batch("agency-002", "Debt", "inc-201", "run-d", now - 29 * h, items=50, rows=45, quarantined=5,
              bytes_exported=GIB // 8, bytes_stored=GIB // 16),
        batch("agency-003", "Debt", "inc-301", "run-b", now - 3 * h, items=10, rows=10, bytes_exported=GIB // 16,
              bytes_stored=GIB // 32),
        batch("agency-003", "Debt", "inc-302", "run-c", now - 2 * h, outcome="failed", items=12,
              reason="ExportError: data/abc.json.gz: MD5 mismatch"),
        batch("agency-005", "Debt", "inc-501", "run-e", now - 28 * h, items=5, rows=5, bytes_exported=GIB // 32,
              bytes_stored=GIB // 64),
    ]


@dataclass
class OpsFleet:
    home: Path
    registry_path: Path
    now: datetime

    @property
    def lake_root(self) -> Path:
        return self.home / "lake"

    def env(self) -> dict[str, str]:
        return {"TENANTLAKE_HOME": str(self.home), "TENANTLAKE_REGISTRY": str(self.registry_path),
                "TENANTLAKE_MODE": "local"}

    @property
    def lake(self):
        return local_lake(self.lake_root)

    @property
    def state(self) -> LocalStore:
        return LocalStore(self.lake_root)

    @property
    def registry(self):
        return load_registry(self.registry_path)


def build_fleet(root: Path, now: datetime | None = None) -> OpsFleet:
    """Write the fleet under `root` (home/ as TENANTLAKE_HOME, tenants.yaml)."""
    now = now or datetime.now(UTC)
    root.mkdir(parents=True, exist_ok=True)
    registry_path = root / "tenants.yaml"
    registry_path.write_text(yaml.safe_dump(registry_doc(), sort_keys=False))
    fleet = OpsFleet(root / "home", registry_path, now)
    lake, state = fleet.lake, fleet.state
    for tenant_id, entity, age in MARKS:
        at = now - age
        watermarks.advance(state, tenant_id, entity,
                           watermarks.Watermark(int(at.timestamp() * 1e6), f"mark-{tenant_id}-{entity}", "INCREMENTAL_EXPORT"))
    rows = batches(now)
    workdir = tempfile.mkdtemp(prefix="ops-fleet-")
    for run_id in sorted({r["run_id"] for r in rows}):
        log_batches(lake, [r for r in rows if r["run_id"] == run_id], run_id, workdir)
    summary = {"run_id": "run-c", "written_at": (now - timedelta(minutes=90)).isoformat(),
               "tenants": {"agency-003": {"tables": 0, "failed": ["Debt: ExportError: data/abc.json.gz: MD5 mismatch",
                                                                  "Plan: AccessDenied: the role refused AssumeRole"]}},
               "failed": ["agency-003/Debt", "agency-003/Plan"]}
    older = {**summary, "run_id": "run-b", "written_at": (now - timedelta(hours=3)).isoformat(),
             "tenants": {"agency-001": {"failed": ["Plan: an older failure, healed since"]}},
             "failed": ["agency-001/Plan"]}
    state.put("_state/runs/run-c/summary.json", orjson.dumps(summary))
    state.put("_state/runs/run-b/summary.json", orjson.dumps(older))
    return fleet


def use_fleet(monkeypatch, fleet: OpsFleet) -> None:
    """Point the runtime (Runtime.from_env) at the fleet."""
    from tenantlake import runtime

    for k, v in fleet.env().items():
        monkeypatch.setenv(k, v)
    runtime.forget()


# ---- the fixture is what it says ----------------------------------------------------------------

def test_the_fleet_holds_what_the_behaviour_tests_assume(tmp_path):
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    fleet = build_fleet(tmp_path, now)
    mark = watermarks.read(fleet.state, LATE_TENANT, LATE_ENTITY)
    assert now - datetime.fromtimestamp(mark.to_us / 1e6, UTC) == timedelta(hours=29)
    assert watermarks.read(fleet.state, "agency-004", "Debt") is None
    from tenantlake.lake.read import read

    log = read(fleet.lake, "ops", "batches")
    assert log.num_rows == 8
    assert sorted(log.filter(log["outcome"].to_numpy(zero_copy_only=False) == "failed")["tenant_id"].to_pylist()) == [
        "agency-003"]
    assert fleet.registry.tenant("agency-005").freshness == {"Debt": "30h"}
    assert os.path.exists(fleet.lake_root / "_state/runs/run-c/summary.json")
