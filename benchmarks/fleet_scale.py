"""A fleet of N tenants x 8 tables with tiny increments over several windows, end to end through the
code the DAG tasks call, beside a bare DuckDB pipeline over the same files, in one run.

    .venv/bin/python benchmarks/fleet_scale.py --tenants 200 --json /tmp/fleet-200.json

Stages (each timed; the simulation is not part of any figure):
  sync     what tenant_exports' sync tasks do: per entity, shards of tenants (tenantlake.tasks.plan_shards),
           each staged, audited and published in one Iceberg commit per zone (tenantlake.sync)
  load     what warehouse_load does: new batches from the lake's snapshots, one set-based load per entity
  refresh  core and marts for what changed; then the same refresh forced to rebuild everything
  bare     DuckDB read_json of every landed data file, then one latest-wins MERGE per entity: the
           usual way, with no verification, audit, lake or history, for the ratio
Printed, and with --json written as one object: tenants, batches, sync_ms_per_batch,
load_ms_per_batch, refresh_s, refresh_full_s, total_s, bare_duckdb_s, peak_rss_mib, commits, and
the lake's commit cost per run. The warehouse's counts are checked against the simulator's truth.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml
from bare import bare_duckdb

ROOT = Path(__file__).resolve().parents[1]
ENTITIES = ("Consumer", "Counselor", "Application", "Income", "Expense", "Debt", "Plan", "Payment")


def fleet_registry(path: Path, n: int) -> None:
    """n tenants, each in an account of its own, from the shipped registry's first entry."""
    doc = yaml.safe_load((ROOT / "dags/registry/tenants.yaml").read_text())
    base = doc["tenants"][0]
    doc["tenants"] = [{**base, "tenant_id": f"agency-{i:05d}", "display_name": f"Agency {i}",
                       "aws_account_id": f"{300000000000 + i}",
                       "role_arn": f"arn:aws:iam::{300000000000 + i}:role/tenantlake-export",
                       "tables": {e: f"{e}-{i:05d}-prod" for e in ENTITIES}} for i in range(n)]
    path.write_text(yaml.safe_dump(doc))


def peak_rss_mib() -> float:
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(self_kib / 1024, 1)


def live_truth(home: Path, tenants: list[str]) -> dict[tuple[str, str], int]:
    """Live (not soft-deleted) items per tenant and entity, from the simulator's own final tables."""
    out = {}
    for t in tenants:
        for e in ENTITIES:
            lines = gzip.decompress((home / f"truth/{t}/{e}.jsonl.gz").read_bytes()).splitlines()
            out[(t, e)] = sum(1 for line in lines if not json.loads(line).get("_deleted", {}).get("BOOL", False))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tenants", type=int, default=50)
    p.add_argument("--consumers", type=int, default=3, help="per tenant: a tiny agency")
    p.add_argument("--windows", type=int, default=4, help="incremental windows after the full export")
    p.add_argument("--window-hours", type=float, default=6)
    p.add_argument("--home", type=Path, help="keep everything here (default: a temporary folder, removed)")
    p.add_argument("--json", type=Path, help="write the figures here as one JSON object")
    args = p.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="tenantlake-fleet-"))
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    fleet_registry(home / "tenants.yaml", args.tenants)
    os.environ.update(TENANTLAKE_REGISTRY=str(home / "tenants.yaml"), TENANTLAKE_HOME=str(home),
                      TENANTLAKE_MODE="local")
    os.environ.pop("TENANTLAKE_LAKE", None)
    from tenantlake import sync
    from tenantlake.loading import open_warehouse
    from tenantlake.registry import load_registry
    from tenantlake.runtime import Runtime
    from tenantlake.tasks import plan_shards
    from tenantlake.warehouse.lake_source import current_files, new_batches
    from tenantlake_dev.simulate import FleetSpec, simulate_fleet

    registry = load_registry()
    days = max(1, round(args.windows * args.window_hours / 24))
    spec = FleetSpec(consumers=args.consumers, days=days, warmup_days=5, window_hours=args.window_hours, seed=5)
    t = time.perf_counter()
    sim = simulate_fleet(registry.tenants, spec, home, workers=os.cpu_count())
    print(f"simulated {args.tenants} tenants: {sim['items']:,} items, {sim['changes']:,} changes, "
          f"{sim['exports']:,} exports in {time.perf_counter() - t:.1f}s (not timed below)", flush=True)

    runtime = Runtime.from_env()
    started = time.perf_counter()
    batches = commits = 0
    commit_s = 0.0
    from tenantlake.lake import publish as publish_module

    real_append = publish_module.append_files

    def timed_append(*a, **kw):  # the commit cost per run, as the fleet-scale issue asks
        nonlocal commits, commit_s
        t0 = time.perf_counter()
        out = real_append(*a, **kw)
        commit_s += time.perf_counter() - t0
        commits += out is not None
        return out

    publish_module.append_files = timed_append
    t = time.perf_counter()
    for shard in plan_shards(registry, {}):
        work = [sync.plan_local(runtime.landing, runtime.lake, runtime.state, registry.tenant(tid), shard["entity"])
                for tid in shard["tenants"]]
        outcomes = sync.sync_shard(runtime.landing, runtime.lake, runtime.state, shard["entity"], work, "bench",
                                   runtime.key_for, on_progress=lambda _: None)
        bad = [o.error for o in outcomes if o.error]
        if bad:
            raise SystemExit(f"sync failed: {bad[:3]}")
        batches += sum(len(o.batches) for o in outcomes)
    sync_s = time.perf_counter() - t
    publish_module.append_files = real_append

    warehouse = open_warehouse(runtime.settings, runtime.state, runtime.lake)
    try:
        t = time.perf_counter()
        new, cursors = new_batches(runtime.lake, warehouse)
        raw, protected = current_files(runtime.lake)
        warehouse.register_lake(raw, protected)
        report = warehouse.load(new, cursors=cursors)
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        warehouse.refresh(registry)
        refresh_s = time.perf_counter() - t
        t = time.perf_counter()
        warehouse.refresh(registry, full=True)
        refresh_full_s = time.perf_counter() - t
        got = {(r["tenant_id"], e): r["n"] for e in ENTITIES for r in warehouse.query(
            f"SELECT tenant_id, COUNT(*) AS n FROM core.current_{e.lower()} "
            "WHERE NOT _removed AND NOT COALESCE(is_deleted, FALSE) GROUP BY tenant_id")}
    finally:
        warehouse.close()
    total_s = time.perf_counter() - started
    truth = live_truth(home, [t.tenant_id for t in registry.tenants])
    wrong = {k: (got.get(k, 0), v) for k, v in truth.items() if got.get(k, 0) != v}
    bare_s = bare_duckdb(Path(runtime.settings.landing), home)
    figures = {
        "tenants": args.tenants, "batches": batches, "loaded_batches": report.loaded,
        "sync_ms_per_batch": round(sync_s * 1000 / max(batches, 1), 2),
        "load_ms_per_batch": round(load_s * 1000 / max(batches, 1), 2),
        "refresh_s": round(refresh_s, 2), "refresh_full_s": round(refresh_full_s, 2),
        "total_s": round(total_s, 2), "bare_duckdb_s": round(bare_s, 2),
        "ratio_total_to_bare": round(total_s / bare_s, 1) if bare_s else None,
        "peak_rss_mib": peak_rss_mib(), "commits": commits, "commit_s": round(commit_s, 2),
        "commit_ms_per_commit": round(commit_s * 1000 / max(commits, 1), 1),
        "counts_match_truth": not wrong,
    }
    for k, v in figures.items():
        print(f"{k:>22}: {v}")
    if wrong:
        print(f"counts differing from the truth (ours, truth): {dict(list(wrong.items())[:10])}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    if not args.home:
        shutil.rmtree(home, ignore_errors=True)
    sys.exit(0 if not wrong else 1)


if __name__ == "__main__":
    main()
