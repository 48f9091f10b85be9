"""Quality-gate cost, side by side, in one run:

    .venv/bin/python benchmarks/quality_throughput.py [--tenants 80] [--large-rows 200000]

  tiny   N tenants x 8 entities, 0-5 rows per batch (an hourly increment): the audit cost per
         batch through `quality.audit_many` (each entity's batches in one call) against one
         GX validation per batch (the usual way; GX's import and suite set-up are paid before
         the clock starts, so this is the steady state, not the first batch)
  large  one Debt batch of --large-rows rows: rows/s through the vectorised evaluator and
         through GX (what audit_many did above 10,000 rows until the evaluator took every size)
Both engines' decisions (rows set aside, failures, warnings) are compared batch by batch, and the
run says how many agree. Rows are generated here, in the lake layout, from the contracts, with a
few defects (values outside a set, out-of-range amounts, duplicate ids, future stamps).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import warnings
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXPORT = datetime(2026, 11, 2, tzinfo=UTC)
TEXT = {"state": ["NY", "CA", "TX"], "postal_code": ["10001", "94103"], "email": ["a@b.example"],
        "creditor_name": ["CHASE BANK USA NA", "Discover"]}
BAD_TEXT = {"state": "zz", "postal_code": "7303", "email": "x y", "creditor_name": ""}


def synthetic(entity: str, n: int, tenant: str, rng: random.Random, defects: float = 0.05):
    """n rows of an entity in the lake layout; about `defects` of them carry a defect."""
    import pyarrow as pa

    from tenantlake.contracts import ENTITIES
    from tenantlake.formats.rows import lake_schema

    contract = ENTITIES[entity]

    def value(a, i):
        bad = rng.random() < defects
        if a.key:
            return f"{entity[:2].lower()}-{tenant}-{i if not bad else 0}"
        if a.values:
            return "NEW_VALUE" if bad else rng.choice(a.values)
        if a.kind == "string":
            if bad and a.column in BAD_TEXT:
                return BAD_TEXT[a.column]
            return rng.choice(TEXT.get(a.column, ["c-1", "p-1"]))
        if a.kind == "int":
            return rng.randint(1, 8) if not bad else 5000
        if a.kind == "money":
            return Decimal(rng.randint(0, 10_000_00)) / 100 * (-1 if bad else 1)
        if a.kind == "rate":
            return Decimal(rng.randint(0, 30_0000)) / 10_000 + (100 if bad else 0)
        if a.kind == "timestamp":
            return EXPORT + timedelta(days=3 if bad else -rng.randint(0, 900), seconds=rng.randint(0, 86_399))
        if a.kind == "date":
            return date(1940, 1, 1) + timedelta(days=rng.randint(0, 24_000))
        if a.kind == "bool":
            return rng.random() < 0.5
        return None

    rows = []
    for i in range(n):
        row = {a.column: value(a, i) for a in contract.attributes}
        row.update(tenant_id=tenant, _op="remove" if rng.random() < 0.05 else "insert", _event_ts=EXPORT,
                   _export_id="e", _source_file="f", _line=i)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=lake_schema(contract))


def decisions(audits: dict) -> dict:
    return {k: (a.quarantined_rows, a.failed, a.warned, a.error) for k, a in audits.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tenants", type=int, default=80, help="tenants; batches = tenants x 8 entities")
    p.add_argument("--large-rows", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    warnings.simplefilter("ignore")

    t = time.perf_counter()
    from tenantlake import quality
    from tenantlake.contracts import ENTITIES
    t_import = time.perf_counter() - t

    rng = random.Random(args.seed)
    export_us = int(EXPORT.timestamp() * 1_000_000)
    fleet: dict[str, list] = {e: [] for e in ENTITIES}
    for i in range(args.tenants):
        tenant = f"agency-{i:04d}"
        for entity in ENTITIES:
            rows = synthetic(entity, rng.randint(0, 5), tenant, rng)
            fleet[entity].append(quality.AuditBatch((tenant, entity), tenant, "INCREMENTAL_EXPORT", rows,
                                                    quality.params_for(tenant, rows.num_rows, export_us)))
    n = sum(len(b) for b in fleet.values())
    plans = {f"agency-{i:04d}": {"p-1"} for i in range(args.tenants)}

    def published(tenant, entity):
        return plans[tenant] if entity == "Plan" else set()

    t = time.perf_counter()
    for entity in ENTITIES:
        quality.load_suite(entity, quality.suites_folder())
    t_suites = time.perf_counter() - t
    t = time.perf_counter()
    fast = {}
    for entity, batches in fleet.items():
        fast |= quality.audit_many(entity, batches, published)
    t_fast = time.perf_counter() - t
    gx_imported = "great_expectations" in sys.modules

    t = time.perf_counter()
    from tenantlake.quality import gx
    gx.context()
    for entity in ENTITIES:  # GX's own set-up once per process: the suite objects, the first metric graph
        quality.audit_many(entity, fleet[entity][:1], published, engine="gx")
    t_gx_start = time.perf_counter() - t
    t = time.perf_counter()
    slow = {}
    for entity, batches in fleet.items():
        slow |= quality.audit_many(entity, batches, published, engine="gx")
    t_gx = time.perf_counter() - t
    same = sum(decisions(fast)[k] == decisions(slow)[k] for k in fast)
    aside = sum(len(a.quarantined_rows) for a in fast.values())
    failed = sum(bool(a.failed) for a in fast.values())

    print(f"tiny batches: {n} ({args.tenants} tenants x {len(ENTITIES)} entities, 0-5 rows each, "
          f"{sum(b.rows.num_rows for v in fleet.values() for b in v)} rows; {aside} rows set aside, {failed} failed)")
    print(f"  {'way':34} {'ms/batch':>9} {'total s':>8}")
    print(f"  {'audit_many (vectorised), 8 calls':34} {t_fast / n * 1000:9.3f} {t_fast:8.3f}")
    print(f"  {'one GX validation per batch':34} {t_gx / n * 1000:9.3f} {t_gx:8.3f}")
    print(f"  ratio GX / audit_many: {t_gx / t_fast:.0f}x; decisions agree on {same}/{n} batches")
    print(f"  once per process: import tenantlake.quality {t_import * 1000:.0f} ms, load 8 suites "
          f"{t_suites * 1000:.0f} ms, GX imported by audit_many: {gx_imported}; "
          f"GX import + first validations {t_gx_start:.1f} s")

    tenant = "agency-0000"
    big = synthetic("Debt", args.large_rows, tenant, random.Random(args.seed), defects=0.01)
    batch = quality.AuditBatch("big", tenant, "FULL_EXPORT", big, quality.params_for(tenant, big.num_rows, export_us))
    print(f"large batch: Debt, {big.num_rows:,} rows")
    timed = {}
    for engine in ("fast", "gx"):
        t = time.perf_counter()
        timed[engine] = quality.audit_many("Debt", [batch], published, engine=engine)["big"]
        s = time.perf_counter() - t
        done = timed[engine]
        print(f"  {engine:4} {s:7.2f} s {big.num_rows / s:12,.0f} rows/s   "
              f"({len(done.quarantined_rows)} rows set aside, by {done.result['meta']['audited_by']})")
    ceiling = (f"above {quality.FAST_MAX_ROWS:,} rows" if quality.FAST_MAX_ROWS
               else "only for what the evaluator does not know")
    agree = decisions({0: timed["fast"]}) == decisions({0: timed["gx"]})
    print(f"  decisions agree: {agree}; audit_many picks GX {ceiling}")


if __name__ == "__main__":
    main()
