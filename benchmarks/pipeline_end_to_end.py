"""Landed exports to refreshed marts on the embedded default, timing each stage.

    .venv/bin/python benchmarks/pipeline_end_to_end.py --consumers 16500     # ~1M items, 5 agencies

Stages: simulate (not part of the pipeline figure), ingest (verify + decode + audit + publish every
tenant table to the Iceberg lake, one shard per entity, two processes as Airflow would run two
tasks), load (the lake's new batches, set-based per entity: stage, checks, MERGE latest-wins,
history, audit), refresh (dimensions, facts, marts, and the final checkpoint of the DuckDB file).
Then, on the same files in the same run, the bare DuckDB pipeline (benchmarks/bare.py, in a process
of its own) for the ratio. Prints seconds per stage, items/s, the ratio, and peak RSS of this
process (load and refresh), of the largest ingest worker (simulated data made in this run counts
there too: use --reuse) and of the bare pipeline.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bare import bare_duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sync_entity(home: str, entity: str) -> int:
    """One entity of every tenant in one shard: what a tenant_exports sync task does."""
    import os

    os.environ.update(TENANTLAKE_HOME=home, TENANTLAKE_MODE="local")
    from tenantlake import sync
    from tenantlake.runtime import Runtime

    rt = Runtime.from_env()
    work = [sync.plan_local(rt.landing, rt.lake, rt.state, t, entity) for t in rt.registry.tenants]
    outcomes = sync.sync_shard(rt.landing, rt.lake, rt.state, entity, work, "bench", rt.key_for,
                               on_progress=lambda _: None)
    bad = [o.error for o in outcomes if o.error]
    assert not bad, bad
    return sum(o.summary()["rows"] for o in outcomes)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--consumers", type=int, default=16500, help="per agency (16,500 x 5 is about 1M items)")
    p.add_argument("--days", type=int, default=3)
    p.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "tenantlake-pipeline-bench")
    p.add_argument("--reuse", action="store_true", help="keep the landed exports of an earlier run with the same spec")
    args = p.parse_args()
    import os

    os.environ.update(TENANTLAKE_HOME=str(args.home), TENANTLAKE_MODE="local")
    from tenantlake.loading import open_warehouse
    from tenantlake.registry import load_registry
    from tenantlake.runtime import Runtime
    from tenantlake.warehouse.lake_source import current_files, new_batches
    from tenantlake_dev.simulate import FleetSpec, simulate_fleet

    registry = load_registry()
    spec = FleetSpec(consumers=args.consumers, days=args.days)
    made = args.home / "simulated.json"
    if args.reuse and made.exists() and json.loads(made.read_text())["spec"] == repr(spec):
        sim = json.loads(made.read_text())
        shutil.rmtree(args.home / "lake", ignore_errors=True)  # what the pipeline makes goes; the landing stays
        (args.home / "warehouse.duckdb").unlink(missing_ok=True)
        (args.home / "bare.duckdb").unlink(missing_ok=True)
    else:
        shutil.rmtree(args.home, ignore_errors=True)
        sim = simulate_fleet(registry.tenants, spec, args.home)
        made.write_text(json.dumps({"spec": repr(spec), **{k: sim[k] for k in ("items", "changes", "seconds")}}))
    items = sim["items"] + sim["changes"]
    print(f"simulated {sim['items']:,} items + {sim['changes']:,} changes in {sim['seconds']}s")
    stages = {}
    t = time.perf_counter()
    entities = sorted({e for t in registry.tenants for e in t.tables})
    with ProcessPoolExecutor(2) as pool:
        rows = sum(pool.map(sync_entity, [str(args.home)] * len(entities), entities))
    stages["ingest (verify, decode, audit, publish)"] = time.perf_counter() - t
    runtime = Runtime.from_env()
    wh = open_warehouse(runtime.settings, runtime.state, runtime.lake)
    t = time.perf_counter()
    wh.register_lake(*current_files(runtime.lake))
    batches, cursors = new_batches(runtime.lake, wh)
    result = wh.load(batches, cursors=cursors)
    stages["load (stage, checks, MERGE, history, audit)"] = time.perf_counter() - t
    t = time.perf_counter()
    wh.refresh(registry)
    wh.close()  # the checkpoint: DuckDB writes the file here, so it counts
    stages["refresh (dims, facts, marts) + checkpoint"] = time.perf_counter() - t
    assert not result.failed, result.failed
    total = sum(stages.values())
    me, workers = (resource.getrusage(w).ru_maxrss / 1024 for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    # a fresh process of its own (spawned: a fork would start with our pages): its memory is its own
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        bare, bare_rss = pool.submit(_bare, args.home).result()
    print(f"{rows:,} rows published, {result.loaded} batches loaded")
    for name, seconds in stages.items():
        print(f"  {name:42} {seconds:7.2f}s")
    print(f"  {'total, landed exports to refreshed marts':42} {total:7.2f}s  ({items / total:,.0f} items/s)")
    print(f"  {'bare DuckDB pipeline, same files':42} {bare:7.2f}s  (ours / bare: {total / bare:.2f}x)")
    print(f"peak RSS: this process (load, refresh) {me:,.0f} MiB; ingest workers {workers:,.0f} MiB; "
          f"bare pipeline {bare_rss:,.0f} MiB")


def _bare(home: Path) -> tuple[float, float]:
    return bare_duckdb(home / "landing", home), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
