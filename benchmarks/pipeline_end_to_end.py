"""Landed exports to refreshed marts on the embedded default, timing each stage.

    .venv/bin/python benchmarks/pipeline_end_to_end.py --consumers 16500     # ~1M items, 5 agencies

Stages: simulate (not part of the pipeline figure), ingest (verify + decode + audit + publish every
tenant table, two processes as Airflow would run two tasks), load (each batch: stage, history,
MERGE latest-wins, audit), refresh (dimensions, facts, marts, and the
final checkpoint of the DuckDB file). Prints seconds per stage, items/s
for the pipeline, and peak RSS of the load process.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sync_one(home: str, tenant_id: str, entity: str) -> int:
    from tenantlake import sync
    from tenantlake.registry import load_registry
    from tenantlake.storage import LocalStore

    tenant = load_registry().tenant(tenant_id)
    r = sync.sync_landed(LocalStore(f"{home}/landing"), LocalStore(f"{home}/lake"), tenant, entity, "bench")
    return r.summary()["rows"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--consumers", type=int, default=16500, help="per agency (16,500 x 5 is about 1M items)")
    p.add_argument("--days", type=int, default=3)
    p.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "tenantlake-pipeline-bench")
    p.add_argument("--reuse", action="store_true", help="keep the landed exports of an earlier run with the same spec")
    args = p.parse_args()
    from tenantlake.pseudonyms import local_key
    from tenantlake.registry import load_registry
    from tenantlake.storage import LocalStore
    from tenantlake.warehouse import DuckDBWarehouse, load_lake
    from tenantlake_dev.simulate import FleetSpec, simulate_fleet

    registry = load_registry()
    spec = FleetSpec(consumers=args.consumers, days=args.days)
    made = args.home / "simulated.json"
    if args.reuse and made.exists() and json.loads(made.read_text())["spec"] == repr(spec):
        sim = json.loads(made.read_text())
        shutil.rmtree(args.home / "lake", ignore_errors=True)  # what the pipeline makes goes; the landing stays
        (args.home / "warehouse.duckdb").unlink(missing_ok=True)
    else:
        shutil.rmtree(args.home, ignore_errors=True)
        sim = simulate_fleet(registry.tenants, spec, args.home)
        made.write_text(json.dumps({"spec": repr(spec), **{k: sim[k] for k in ("items", "changes", "seconds")}}))
    items = sim["items"] + sim["changes"]
    print(f"simulated {sim['items']:,} items + {sim['changes']:,} changes in {sim['seconds']}s")
    stages = {}
    t = time.perf_counter()
    pairs = [(str(args.home), t.tenant_id, e) for t in registry.tenants for e in t.tables]
    with ProcessPoolExecutor(2) as pool:
        rows = sum(pool.map(sync_one, *zip(*pairs, strict=True)))
    stages["ingest (verify, decode, audit, publish)"] = time.perf_counter() - t
    wh = DuckDBWarehouse(str(args.home / "warehouse.duckdb"), lambda tid: local_key(args.home, tid))
    t = time.perf_counter()
    result = load_lake(wh, LocalStore(args.home / "lake"), registry, refresh=False)
    stages["load (stage, history, MERGE, audit)"] = time.perf_counter() - t
    t = time.perf_counter()
    wh.refresh(registry)
    wh.close()  # the checkpoint: DuckDB writes the file here, so it counts
    stages["refresh (dims, facts, marts) + checkpoint"] = time.perf_counter() - t
    assert not result["failed"], result["failed"]
    total = sum(stages.values())
    print(f"{rows:,} rows published, {result['loaded']} batches loaded")
    for name, seconds in stages.items():
        print(f"  {name:42} {seconds:7.2f}s")
    print(f"  {'total, landed exports to refreshed marts':42} {total:7.2f}s  ({items / total:,.0f} items/s)")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
