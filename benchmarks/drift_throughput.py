"""Drift throughput, side by side in one run on the same files: ours vs DuckDB vs the boto3 way, on a
drifting export and on a non-drifting export of the same number of items.

    .venv/bin/python benchmarks/drift_throughput.py                        # 1M Debt items, 8 files each
    .venv/bin/python benchmarks/drift_throughput.py --items 250000 --entity Consumer --rounds 2

The exports come from tenantlake_dev.drift_fixture, which writes its own DynamoDB JSON (no simulator):
the drifting one has ~35% of items with an undeclared nested field (Debt bureau.history, a list of
maps), ~20% a new top-level number, ~10% a new AWSDate attribute, 5% enum values outside the
contract, ~0.4% a declared number sent as text (coerced) and ~0.05% text that is no number
(quarantined). The other export has none of that.

Paths (each in its own process; the machine's cores are shared by all, one path at a time):
  ours         what ingest runs to decode an export: manifests and MD5 checked, each file streamed,
               decoded and written as a local Parquet part, in 2 worker processes set up as ingest's
               (ingest_throughput.run_stage says how they differ)
  duckdb       DuckDB read_json with the contract's columns, unwrapped and cast -> Parquet, 2 threads
  duckdb-auto  DuckDB read_json with the schema it detects -> Parquet as it comes, 2 threads
  boto3        json + boto3 TypeDeserializer + pandas -> Parquet (the usual way)
  ours-1core, duckdb-1core   ours with one worker, DuckDB with one thread: each path's own cost per
               item, without what running two at once costs it (the machine's two cores share caches
               and memory bandwidth, and DuckDB's one COPY spends ~1.5x the CPU on two threads)
Prints items/s (wall), MB/s (of decompressed JSON) and items per CPU-second per path and export,
and the ratios ours / DuckDB and ours on the drifting export / ours on the non-drifting one, on
both clocks. With --rounds N every path runs N times, interleaved, and the best run counts (the
machine is shared and noisy; CPU time is the steadier figure there).
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.ingest_throughput import (  # noqa: E402
    data_files,
    measure,
    run_boto3,
    run_duckdb,
    run_duckdb_auto,
    run_stage,
)
from tenantlake_dev.drift_fixture import NO_DRIFT, Mix, write_export  # noqa: E402

EXPORTS = {"drifting": Mix(), "non-drifting": NO_DRIFT}


def make_data(root: Path, entity: str, items: int, files: int) -> dict[str, tuple[Path, str]]:
    out = {}
    for name, mix in EXPORTS.items():
        data = root / f"{entity}-{items}-{files}-{name}"
        marker = data / "summary-key.txt"
        if not marker.exists():
            shutil.rmtree(data, ignore_errors=True)
            t = time.perf_counter()
            written = write_export(data, tenant_id="agency-drift", entity=entity, items=items, files=files, mix=mix)
            marker.write_text(written.summary_key)
            print(f"generated {items:,} {name} {entity} items in {files} files in {time.perf_counter() - t:.1f}s "
                  f"-> {data}")
        out[name] = (data, marker.read_text())
    return out


def json_bytes(data: Path, summary_key: str) -> int:
    return sum(len(gzip.decompress(f.read_bytes())) for f in data_files(data, summary_key))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--files", type=int, default=8)
    p.add_argument("--entity", default="Debt", choices=["Debt", "Consumer"])
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "tenantlake-drift-bench")
    paths = {"ours": None, "duckdb": None, "duckdb-auto": run_duckdb_auto, "boto3": run_boto3,
             "ours-1core": None, "duckdb-1core": None}
    p.add_argument("--only", nargs="*", choices=list(paths), default=list(paths))
    args = p.parse_args()
    paths["ours"] = partial(run_stage, entity=args.entity)
    paths["duckdb"] = partial(run_duckdb, entity_name=args.entity)
    paths["ours-1core"] = partial(run_stage, entity=args.entity, workers=1)
    paths["duckdb-1core"] = partial(run_duckdb, entity_name=args.entity, threads=1)
    exports = make_data(args.data, args.entity, args.items, args.files)
    sizes = {name: json_bytes(*where) for name, where in exports.items()}
    for name, size in sizes.items():
        print(f"{name}: {args.items:,} items, {size / 2**20:,.0f} MiB of JSON ({size / args.items:,.0f} bytes/item)")
    best: dict[tuple[str, str], float] = {}
    best_cpu: dict[tuple[str, str], float] = {}
    info: dict[str, str] = {}
    paired: dict[tuple[str, int], list[float]] = {}  # (path, clock) -> drifting / non-drifting, per round
    print(f"\n{'export':13} {'path':12} {'items':>10} {'seconds':>8} {'items/s':>10} {'MB/s':>7} {'CPU s':>7} "
          f"{'items/CPU-s':>11} {'peak RSS':>9}")
    for _ in range(args.rounds):
        for path in args.only:
            if path == "boto3" and best.get(("drifting", path)):
                continue  # the usual way is slow and steady: once is enough
            this_round = {}
            for name, (data, summary_key) in exports.items():
                n, seconds, rss, said, cpu = measure(path, data, summary_key, paths[path])
                this_round[name] = (n / seconds, n / cpu)
                assert n == args.items, (path, name, n)
                rate = n / seconds
                best[(name, path)] = max(best.get((name, path), 0), rate)
                best_cpu[(name, path)] = max(best_cpu.get((name, path), 0), n / cpu)
                if said:
                    info[name] = said
                print(f"{name:13} {path:12} {n:>10,} {seconds:>8.2f} {rate:>10,.0f} "
                      f"{sizes[name] / seconds / 1e6:>7.1f} {cpu:>7.1f} {n / cpu:>11,.0f} {rss:>7,.0f}Mi", flush=True)
            if len(this_round) == 2:
                for clock in (0, 1):
                    paired.setdefault((path, clock), []).append(
                        this_round["drifting"][clock] / this_round["non-drifting"][clock])
    print()
    for name, said in info.items():
        print(f"ours on {name}: {said}")
    for clock, table in (("items/s (wall)", best), ("items per CPU-second", best_cpu)):
        print(f"\nbest of {args.rounds} round(s), {clock}:")
        for name in exports:
            print(f"  {name:13} " + "  ".join(f"{path} {table[(name, path)]:,.0f}" for path in args.only
                                              if (name, path) in table))
        print_ratios(table, sizes)
    print_paired(paired, sizes, args.rounds)

PAIRS = (("ours", "duckdb"), ("ours", "duckdb-auto"), ("ours", "boto3"), ("ours-1core", "duckdb-1core"))


def print_ratios(table: dict[tuple[str, str], float], sizes: dict[str, int]) -> None:
    """ours / each other path on each export, and ours on the drifting export / on the other one."""
    for name in sizes:
        for ours, other in PAIRS:
            if (name, ours) in table and (name, other) in table:
                print(f"  ratio {ours} / {other} on {name}: {table[(name, ours)] / table[(name, other)]:.2f}x")
    for ours in ("ours", "ours-1core"):
        if ("drifting", ours) in table and ("non-drifting", ours) in table:
            drifting, plain = table[("drifting", ours)], table[("non-drifting", ours)]
            print(f"  ratio {ours} drifting / {ours} non-drifting: {drifting / plain:.2f}x per item, "
                  f"{drifting * sizes['drifting'] / (plain * sizes['non-drifting']):.2f}x per byte")


def print_paired(paired: dict[tuple[str, int], list[float]], sizes: dict[str, int], rounds: int) -> None:
    """Ours drifting / non-drifting, each round's two runs taken together (they run back to back):
    the machine's speed wanders by tens of percent over minutes, and a best run of one export and a
    best run of the other can come from different minutes. The median round is quoted."""
    if rounds < 2 or not paired:
        return
    print(f"\npaired by round (the two exports back to back), median of {rounds}, drifting / non-drifting:")
    for (path, clock), ratios in sorted(paired.items()):
        median = statistics.median(ratios)
        print(f"  {path:10} {('wall', 'CPU')[clock]:4}: {median:.2f}x per item, "
              f"{median * sizes['drifting'] / sizes['non-drifting']:.2f}x per byte (rounds: "
              + ", ".join(f"{r:.2f}" for r in ratios) + ")")


if __name__ == "__main__":
    main()
