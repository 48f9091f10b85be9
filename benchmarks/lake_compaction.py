"""Small files per partition and the time to scan them, before and after the lake's compaction, in one run.

    .venv/bin/python benchmarks/fleet_scale.py --tenants 20 --windows 48 --window-hours 1 --home /tmp/fleet-hourly
    .venv/bin/python benchmarks/lake_compaction.py --home /tmp/fleet-hourly

The lake under --home (made by the fleet benchmark: hourly windows leave one tiny file per batch) is
compacted in place (Iceberg metadata holds absolute paths, so a copy would still point at the
original files): make it again to run the benchmark again. For each zone's tables: files per partition
(mean and max) and the time to scan the current snapshot as `lake.*` reads it (the snapshot's file list
from the catalog, then DuckDB over those files: rows per tenant and a checksum of every column), each
the median of --runs; then `tenantlake.lake.maintenance.compact` (what lake_maintenance runs), and the
same again. The rows and checksums after must equal those before, or it exits 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ZONES = ("raw", "protected")


def measure(lake, zone: str, entity: str, runs: int) -> dict:
    import duckdb

    from tenantlake.lake.read import current_files

    table = lake.table(zone, entity, refresh=True)
    per_partition = Counter(tuple(t.file.partition) for t in table.scan().plan_files())
    times, answer = [], None
    for _ in range(runs):
        t = time.perf_counter()
        files = [f.path for f in current_files(lake, zone, entity)]
        con = duckdb.connect()
        rows = con.execute(
            "SELECT tenant_id, count(*), sum(hash(columns(*)))::HUGEINT FROM read_parquet(?, union_by_name = true) "
            "GROUP BY ALL ORDER BY ALL", [files]).fetchall()
        con.close()
        times.append(time.perf_counter() - t)
        answer = rows
    return {"files": sum(per_partition.values()), "partitions": len(per_partition),
            "mean_files": sum(per_partition.values()) / max(len(per_partition), 1),
            "max_files": max(per_partition.values(), default=0), "scan_s": statistics.median(times),
            "answer": answer}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, required=True, help="a home holding a lake (see above)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--min-files", type=int, default=8, help="compact partitions holding this many files or more")
    args = p.parse_args()
    if not (args.home / "lake").is_dir():
        sys.exit(f"{args.home}/lake: no lake there (make one with benchmarks/fleet_scale.py --home {args.home})")
    os.environ.update(TENANTLAKE_HOME=str(args.home), TENANTLAKE_LAKE=str(args.home / "lake"), TENANTLAKE_MODE="local")
    if (args.home / "tenants.yaml").exists():  # the fleet benchmark's registry
        os.environ["TENANTLAKE_REGISTRY"] = str(args.home / "tenants.yaml")
    work = Path(tempfile.mkdtemp(prefix="tenantlake-compaction-"))
    from tenantlake.contracts import ENTITIES
    from tenantlake.lake.maintenance import compact
    from tenantlake.runtime import Runtime

    contracted = {name.lower(): name for name in ENTITIES}  # the catalog lists tables in lower case

    lake = Runtime.from_env().lake
    wrong = []
    print(f"{'table':28} {'files':>13} {'files/partition':>17} {'max':>9} {'scan s':>15} {'after/before':>12}")
    for zone in ZONES:
        for entity in [contracted[t] for t in lake.entities(zone) if t in contracted]:
            before = measure(lake, zone, entity, args.runs)
            t = time.perf_counter()
            compact(lake, zone, entity, min_files=args.min_files, workdir=str(work))
            took = time.perf_counter() - t
            after = measure(lake, zone, entity, args.runs)
            if after["answer"] != before["answer"]:
                wrong.append(f"{zone}.{entity}")
            print(f"{zone + '.' + entity.lower():28} {before['files']:>6}->{after['files']:<6} "
                  f"{before['mean_files']:>7.1f}->{after['mean_files']:<7.1f} "
                  f"{before['max_files']:>3}->{after['max_files']:<3} "
                  f"{before['scan_s']:>6.3f}->{after['scan_s']:<6.3f} "
                  f"{after['scan_s'] / before['scan_s']:>11.2f}x   (compaction {took:.1f}s)", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    if wrong:
        print(f"rows or checksums changed by compaction: {wrong}")
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    main()
