"""Ingest throughput, side by side on the same export files: ours vs the usual ways.

    .venv/bin/python benchmarks/ingest_throughput.py                 # 1M Debt items, 8 files
    .venv/bin/python benchmarks/ingest_throughput.py --items 4000000 --only ours

Paths (each in its own process, so peak RSS is its own; the machine's 2 cores are available to all):
  ours    export -> manifest + MD5 + counts verified -> typed Parquet in raw/ (WAP), 2 processes
  stage   ours up to the staged Parquet parts (what ingest runs to decode an export), 2 processes
  boto3   json.loads + boto3 TypeDeserializer per item + pandas -> Parquet (the usual way)
  duckdb  DuckDB read_json with explicit columns, unwrapped and cast in SQL -> Parquet, 2 threads
  duckdb-auto  DuckDB read_json, schema detected, -> Parquet as it comes (nested), 2 threads
Prints items/s for each and the ratios ours / other. Data is generated once into --data.
benchmarks/drift_throughput.py reuses these paths on drifting exports.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tenantlake.processes import keep_arrow_pages  # noqa: E402

keep_arrow_pages()  # before pyarrow loads: the workers forked here are set up as ingest's (processes.py)


def make_data(data: Path, items: int, files: int) -> str:
    from tenantlake.registry import load_registry
    from tenantlake.storage import LocalStore
    from tenantlake_dev.simulate.bulk import bulk_debt_export

    marker = data / "summary-key.txt"
    if marker.exists():
        return marker.read_text()
    shutil.rmtree(data, ignore_errors=True)
    t = time.perf_counter()
    rec = bulk_debt_export(LocalStore(data), load_registry().tenants[0], items, files,
                           datetime(2026, 11, 1, tzinfo=UTC))
    marker.write_text(rec.manifest_key)
    print(f"generated {items:,} Debt items in {files} files in {time.perf_counter() - t:.1f}s -> {data}")
    return rec.manifest_key


def data_files(data: Path, summary_key: str) -> list[Path]:
    summary = json.loads((data / summary_key).read_text())
    return [data / json.loads(line)["dataFileS3Key"]
            for line in (data / summary["manifestFilesS3Key"]).read_text().splitlines()]


def run_ours(data: Path, summary_key: str, out: Path) -> int:
    """Into an Iceberg lake of its own under `out` (raw and protected zones, one commit each)."""
    import os

    os.environ.update(TENANTLAKE_HOME=str(out), TENANTLAKE_MODE="local")
    os.environ.pop("TENANTLAKE_LAKE", None)
    from tenantlake.ingest import ingest_export
    from tenantlake.runtime import Runtime
    from tenantlake.storage import LocalStore

    rt = Runtime.from_env()
    tenant = rt.registry.tenants[0]
    r = ingest_export(LocalStore(data), summary_key, rt.lake, tenant_id=tenant.tenant_id, entity="Debt",
                      tenant=tenant, run_id="bench", key_for=rt.key_for, workers=2,
                      audit=False)  # the quality gate has its own benchmark
    assert r.quarantined == 0
    return r.rows


def run_stage(data: Path, summary_key: str, out: Path, entity: str = "Debt", workers: int = 2) -> tuple[int, str]:
    """What ingest runs to decode an export: its own per-file staging function, in a pool of workers
    set up as ingest's (processes.process_pool). Ingest forks them from a forkserver, whose start is
    an import (which no path's time includes) and whose workers are not this process's children
    (whose CPU time the benchmark counts); these are forked from here."""
    from concurrent.futures import ProcessPoolExecutor

    from tenantlake.formats.drift import merge_drift
    from tenantlake.formats.dynamodb_json import Source
    from tenantlake.formats.manifest import read_export
    from tenantlake.ingest import bounded_map, stage_data_file
    from tenantlake.storage import LocalStore

    landing = LocalStore(data)
    export = read_export(landing, summary_key)
    out.mkdir(parents=True, exist_ok=True)
    args = ((landing, f, entity, Source("bench", export.export_id, f.key, export.kind, export.export_time_us,
                                         export.view), str(out / f"{i:05d}.parquet"), export.format, False)
            for i, f in enumerate(export.files))
    from tenantlake.processes import keep_freed_memory

    with ProcessPoolExecutor(workers, initializer=keep_freed_memory) as pool:  # one thread each, as in ingest
        parts = list(bounded_map(pool, stage_data_file, args, ahead=workers + 1))
    rows, quarantined = sum(p.rows for p in parts), sum(p.quarantine.num_rows for p in parts)
    drift = merge_drift(*(p.drift for p in parts))
    info = f"{rows:,} published, {quarantined:,} quarantined; drift: " + (", ".join(
        f"{d.path} {d.type} {d.what} x{d.rows:,}" for d in drift) or "none")
    return rows + quarantined, info


def _plain_for_parquet(v):
    """What a user of the usual way ends up writing for a value pandas/pyarrow cannot type."""
    if isinstance(v, dict | list | set):
        return json.dumps(v, default=lambda x: sorted(x) if isinstance(x, set) else str(x), sort_keys=True)
    return v if v is None or isinstance(v, str | bool | int | float) else str(v)


def run_boto3(data: Path, summary_key: str, out: Path) -> int:
    import pandas as pd
    import pyarrow as pa
    from boto3.dynamodb.types import TypeDeserializer

    deser = TypeDeserializer()
    n = 0
    out.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(data_files(data, summary_key)):
        rows = [{k: deser.deserialize(v) for k, v in json.loads(line)["Item"].items()}
                for line in gzip.decompress(f.read_bytes()).splitlines() if line]
        if rows:
            frame = pd.DataFrame(rows)
            if "tags" in frame:
                frame["tags"] = frame["tags"].map(lambda s: sorted(s) if isinstance(s, set) else s)
            try:
                frame.to_parquet(out / f"part-{i}.parquet")
            except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):  # drifted types: mixed or nested
                for column in frame.select_dtypes(include="object").columns:
                    frame[column] = frame[column].map(_plain_for_parquet)
                frame.to_parquet(out / f"part-{i}.parquet")
        n += len(rows)
    return n


def _duck_type(t) -> str:
    import pyarrow as pa

    if pa.types.is_struct(t):
        return "STRUCT(" + ", ".join(f'"{f.name}" {_duck_type(f.type)}' for f in t) + ")"
    if pa.types.is_list(t):
        return _duck_type(t.value_type) + "[]"
    return {pa.string(): "VARCHAR", pa.bool_(): "BOOLEAN"}[t]


def run_duckdb(data: Path, summary_key: str, out: Path, entity_name: str = "Debt", threads: int = 2) -> int:
    import duckdb

    from tenantlake.contracts import entity
    from tenantlake.formats.dynamodb_json import parse_schema

    contract = entity(entity_name)
    item_type = _duck_type(parse_schema(contract, "FULL_EXPORT").field("Item").type)
    casts = {"money": "DECIMAL(18,2)", "rate": "DECIMAL(7,4)", "int": "BIGINT",
             "timestamp": "TIMESTAMPTZ", "date": "DATE"}
    select = []
    for a in contract.attributes:
        numeric = a.kind in ("money", "rate", "int", "epoch_ms")
        key = {"bool": "BOOL", "string_set": "SS"}.get(a.kind, "N" if numeric else "S")
        col = f'Item."{a.name}"' if a.kind in ("bureau", "concessions") else f'Item."{a.name}"."{key}"'
        if a.kind == "epoch_ms":
            col = f"epoch_ms(CAST({col} AS BIGINT))"
        elif a.kind in casts:
            col = f"CAST({col} AS {casts[a.kind]})"
        select.append(f'{col} AS "{a.column}"')
    files = [str(f) for f in data_files(data, summary_key) if f.stat().st_size > 20]
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    sql = (f"COPY (SELECT {', '.join(select)} FROM read_json({files!r}, format='newline_delimited', "
           f"compression='gzip', columns={{'Item': '{item_type}'}})) TO '{out / 'debt.parquet'}' "
           "(FORMAT parquet, COMPRESSION snappy)")
    con.execute(sql)
    return con.execute(f"SELECT count(*) FROM '{out / 'debt.parquet'}'").fetchone()[0]


def run_duckdb_auto(data: Path, summary_key: str, out: Path) -> int:
    """DuckDB's own reading of the files (schema detected from them), written as it comes."""
    import duckdb

    files = [str(f) for f in data_files(data, summary_key) if f.stat().st_size > 20]
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute(f"COPY (SELECT * FROM read_json({files!r}, format='newline_delimited', compression='gzip')) "
                f"TO '{out / 'items.parquet'}' (FORMAT parquet, COMPRESSION snappy)")
    return con.execute(f"SELECT count(*) FROM '{out / 'items.parquet'}'").fetchone()[0]


PATHS = {"ours": run_ours, "stage": run_stage, "boto3": run_boto3, "duckdb": run_duckdb,
         "duckdb-auto": run_duckdb_auto}


def _child(fn, data: str, summary_key: str, out: str, queue) -> None:
    # Imports are not what we measure: load every path's libraries before the clock starts.
    import boto3.dynamodb.types  # noqa: F401
    import duckdb  # noqa: F401
    import pandas  # noqa: F401

    import tenantlake.ingest  # noqa: F401
    t, cpu = time.perf_counter(), _cpu()
    n = fn(Path(data), summary_key, Path(out))
    n, info = n if isinstance(n, tuple) else (n, "")
    queue.put((n, time.perf_counter() - t, info, _cpu() - cpu))


def _cpu() -> float:
    """CPU seconds of this process's threads and of its finished child processes (pool workers):
    a figure the other load on a shared machine disturbs much less than wall time."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def measure(name: str, data: Path, summary_key: str, fn=None) -> tuple[int, float, float, str, float]:
    """(items, seconds, peak RSS in MiB of the path's whole process tree, what the path says, CPU
    seconds of the path's processes)."""
    out = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    queue = mp.get_context("fork").Queue()
    proc = mp.get_context("fork").Process(target=_child, args=(fn or PATHS[name], str(data), summary_key, str(out),
                                                                queue))
    proc.start()
    peak = 0
    ps = psutil.Process(proc.pid)
    while proc.is_alive():
        try:
            tree = [ps, *ps.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.02)
    proc.join()
    shutil.rmtree(out, ignore_errors=True)
    if proc.exitcode != 0:
        raise SystemExit(f"{name} failed (exit {proc.exitcode})")
    n, seconds, info, cpu = queue.get()
    return n, seconds, peak / 2**20, info, cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--files", type=int, default=8)
    p.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "tenantlake-bench")
    p.add_argument("--only", nargs="*", choices=list(PATHS), default=list(PATHS))
    args = p.parse_args()
    data = args.data / f"debt-{args.items}-{args.files}"
    summary_key = make_data(data, args.items, args.files)
    print(f"{'path':8} {'items':>10} {'seconds':>8} {'items/s':>10} {'peak RSS':>9}")
    results = {}
    for name in args.only:
        n, seconds, rss, _, _ = measure(name, data, summary_key)
        assert n == args.items, (name, n)
        results[name] = n / seconds
        print(f"{name:8} {n:>10,} {seconds:>8.2f} {n / seconds:>10,.0f} {rss:>7,.0f}Mi", flush=True)
    if "ours" in results:
        for other in results.keys() - {"ours"}:
            print(f"ratio ours / {other}: {results['ours'] / results[other]:.2f}x")


if __name__ == "__main__":
    main()
