"""Warehouse load and refresh at tiny increments: a fleet of N tenants x 8 entities, each window a
few changed items per (tenant, entity) batch, loaded by the warehouse the DAG uses (one set-based
load per window, then an incremental refresh) and, side by side on the same files, by a bare
DuckDB pipeline (read_parquet of every new file -> one MERGE per entity, no checks, no audit).

    python benchmarks/warehouse_load.py --tenants 50 --windows 4 --items 2 [--history 100] [--json OUT]

Prints ms per batch of the load (the fixed cost per batch at tiny increments), the incremental
refresh per window against a full rebuild of the same warehouse, and the bare pipeline's time.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tenantlake.contracts import ENTITIES
from tenantlake.formats.rows import lake_schema
from tenantlake.lake.batches import LakeFile, LoadBatch
from tenantlake.privacy import protect

T0 = datetime(2026, 11, 1, tzinfo=UTC)
STATUSES = {"Consumer": ["LEAD", "APPLYING", "ENROLLED"], "Plan": ["PROPOSED", "ACTIVE"],
            "Payment": ["SCHEDULED", "SETTLED"], "Application": ["SUBMITTED", "APPROVED"]}


def item(entity: str, n: int, rng: random.Random) -> dict:
    """A plausible item of the entity (ids cycle, so later windows update earlier items)."""
    consumer = f"c{n % 50}"
    row = {"id": f"{entity[:3].lower()}{n}", "ddb_version": n}
    if entity == "Consumer":
        row.update(id=consumer, status=rng.choice(STATUSES["Consumer"]), date_of_birth=date(1980, 1, 1 + n % 28),
                   postal_code="94110", created_at=T0)
    elif entity == "Debt":
        row.update(consumer_id=consumer, balance=Decimal(rng.randrange(10**6)) / 100, creditor_name="Chase",
                   minimum_payment=Decimal(25))
    elif entity == "Plan":
        row.update(consumer_id=consumer, status=rng.choice(STATUSES["Plan"]), enrolled_debt_ids=[f"deb{n}"],
                   monthly_payment=Decimal(100), start_date=date(2026, 10, 1))
    elif entity == "Payment":
        row.update(consumer_id=consumer, plan_id=f"pla{n}", status=rng.choice(STATUSES["Payment"]),
                   amount=Decimal(100), paid_at=T0)
    elif entity == "Application":
        row.update(consumer_id=consumer, status=rng.choice(STATUSES["Application"]), submitted_at=T0)
    elif entity in ("Income", "Expense"):
        row.update(consumer_id=consumer, monthly_amount=Decimal(1000))
    else:  # Counselor
        row.update(name="Staff", active=True)
    return row


def publish(root: Path, tenant: str, entity: str, export_id: str, items: list[dict], when: datetime) -> LoadBatch:
    schema = lake_schema(ENTITIES[entity])
    rows = []
    for line, it in enumerate(items, 1):
        row = {f.name: None for f in schema}
        row.update(tenant_id=tenant, _op="modify", _event_ts=when, _export_id=export_id,
                   _source_file=f"{export_id}/data/0.json.gz", _line=line, **it)
        rows.append(row)
    table = protect(pa.Table.from_pylist(rows, schema=schema), ENTITIES[entity], lambda t: b"k" * 32)
    path = root / entity / f"{tenant}-{export_id}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return LoadBatch(tenant, entity, export_id, "INCREMENTAL_EXPORT", table.num_rows,
                     (LakeFile(str(path), table.num_rows, path.stat().st_size),))


def fleet(root: Path, tenants: int, windows: int, items: int, history: int = 0,
          seed: int = 1) -> list[list[LoadBatch]]:
    """Per window, one batch per (tenant, entity) of `items` changed items; a first window of
    `history` items per batch stands for what is already there."""
    rng = random.Random(seed)
    out = []
    for w in range(windows + (1 if history else 0)):
        when = T0 + timedelta(hours=6 * w)
        n = history if history and w == 0 else items
        out.append([publish(root, f"agency-{t:04d}", e, f"w{w:03d}",
                            [item(e, rng.randrange(max(200, history)), rng) for _ in range(n)], when)
                    for t in range(tenants) for e in ENTITIES])
    return out


def bare(windows: list[list[LoadBatch]], path: Path) -> float:
    """The floor: DuckDB alone, every new file read at once and MERGEd per entity by key."""
    import duckdb

    con = duckdb.connect(str(path))
    started = time.perf_counter()
    for batches in windows:
        for entity in ENTITIES:
            files = [f.path for b in batches if b.entity == entity for f in b.files]
            key = "consumer_key" if entity == "Consumer" else "id"
            src = f"(SELECT * FROM read_parquet({files!r}, union_by_name = true) QUALIFY ROW_NUMBER() OVER " \
                  f"(PARTITION BY tenant_id, {key} ORDER BY _event_ts DESC, _line DESC) = 1)"
            con.execute(f"CREATE TABLE IF NOT EXISTS t_{entity} AS SELECT * FROM {src} WHERE FALSE")
            con.execute(f"INSERT INTO t_{entity} SELECT * FROM {src} AS b WHERE NOT EXISTS (SELECT 1 FROM t_{entity} "
                        f"AS c WHERE c.tenant_id = b.tenant_id AND c.{key} = b.{key})")
            con.execute(f"UPDATE t_{entity} AS c SET _event_ts = b._event_ts FROM {src} AS b "
                        f"WHERE c.tenant_id = b.tenant_id AND c.{key} = b.{key}")
    seconds = time.perf_counter() - started
    con.close()
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tenants", type=int, default=50)
    p.add_argument("--windows", type=int, default=4)
    p.add_argument("--items", type=int, default=2, help="changed items per (tenant, entity, window)")
    p.add_argument("--history", type=int, default=0, help="items per (tenant, entity) loaded before the windows")
    p.add_argument("--json", type=Path, help="write the figures as one JSON object")
    args = p.parse_args()
    from tenantlake.registry import load_registry
    from tenantlake.warehouse.duckdb import DuckDBWarehouse

    work = Path(tempfile.mkdtemp(prefix="tenantlake-wh-bench-"))
    try:
        windows = fleet(work / "lake", args.tenants, args.windows, args.items, args.history)
        before = windows.pop(0) if args.history else []
        registry = load_registry()
        wh = DuckDBWarehouse(str(work / "wh.duckdb"))
        if before:
            wh.load(before)
            wh.refresh(registry)
        load_s, refresh_s = [], []
        for batches in windows:
            t = time.perf_counter()
            report = wh.load(batches)
            load_s.append(time.perf_counter() - t)
            assert report.loaded == len(batches) and not report.failed and not report.problems, report.summary()
            t = time.perf_counter()
            wh.refresh(registry)
            refresh_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        wh.refresh(registry)  # nothing new
        idle_s = time.perf_counter() - t
        t = time.perf_counter()
        wh.refresh(registry, full=True)
        full_s = time.perf_counter() - t
        replay = time.perf_counter()
        assert wh.load(windows[-1]).skipped == len(windows[-1])
        replay_s = time.perf_counter() - replay
        wh.close()
        bare_s = bare(windows, work / "bare.duckdb")
        batches = sum(len(w) for w in windows)
        figures = {
            "tenants": args.tenants, "windows": args.windows, "batches": batches,
            "load_ms_per_batch": round(1000 * sum(load_s) / batches, 2),
            "replay_ms_per_batch": round(1000 * replay_s / len(windows[-1]), 2),
            "history_rows": sum(b.rows for b in before),
            "refresh_s_per_window": round(sum(refresh_s[1:]) / max(1, len(refresh_s) - 1), 3),
            "refresh_s_windows": [round(s, 3) for s in refresh_s],
            "refresh_idle_s": round(idle_s, 3), "refresh_full_s": round(full_s, 3),
            "bare_duckdb_s": round(bare_s, 3), "load_s": round(sum(load_s), 3),
            "load_vs_bare": round(sum(load_s) / bare_s, 2),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for k, v in figures.items():
        print(f"{k:40} {v}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
