"""The tenant-fleet simulator: plays every agency's AWS account for the embedded default and tests.

For each agency it runs a seeded history, then writes what AWS would have landed in the central
bucket: a FULL export per table at the end of the warm-up, INCREMENTAL exports per window after it,
and (optionally) the same changes as DynamoDB Streams records. Beside the landing tree it writes
ground truth under truth/: each table's final items, every export written, and aggregates.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from tenantlake.processes import process_pool
from tenantlake.registry import Tenant
from tenantlake.storage import open_store
from tenantlake_dev.simulate.defects import inject_defects
from tenantlake_dev.simulate.exports import (
    record_dict,
    write_full_export,
    write_incremental_export,
    write_stream_files,
)
from tenantlake_dev.simulate.history import DAY_US, SPELLING_TO_CREDITOR, TenantHistory
from tenantlake_dev.simulate.truth import fleet_aggregates, tenant_aggregates

HOUR_US = 3_600_000_000


@dataclass(frozen=True)
class FleetSpec:
    consumers: int = 400  # per agency, onboarding over the warm-up and the simulated days
    days: int = 3  # days of incremental history after the full export
    warmup_days: int = 60  # history before the full export (only its final state is exported)
    window_hours: float = 24  # incremental export window
    seed: int = 7
    streams: bool = False
    defects: int = 0  # known-bad items per kind written into each full export (truth/defects.jsonl)
    full_export_at: datetime = datetime(2026, 11, 1, tzinfo=UTC)

    def __post_init__(self):
        if not 0.25 <= self.window_hours <= 24:
            raise ValueError("window_hours must be within DynamoDB's 15 minutes to 24 hours")


def tenant_seed(seed: int, tenant_id: str) -> int:
    # Independent of process scheduling and of which other tenants run: a tenant's files depend
    # only on (seed, tenant_id) and the spec.
    return int.from_bytes(hashlib.sha256(f"{seed}:{tenant_id}".encode()).digest()[:8], "big")


def simulate_tenant(tenant: Tenant, spec: FleetSpec, landing_url: str, truth_dir: str,
                    s3_client=None) -> dict:
    started = time.perf_counter()
    store = open_store(landing_url, client=s3_client)
    start = spec.full_export_at - timedelta(days=spec.warmup_days)
    history = TenantHistory(tenant.tenant_id, tenant_seed(spec.seed, tenant.tenant_id),
                            spec.consumers, start, spec.warmup_days, spec.days).run()
    rng = random.Random(tenant_seed(spec.seed, tenant.tenant_id + "/files"))
    t0 = history.log_from_us
    end = t0 + spec.days * DAY_US
    step = int(spec.window_hours * HOUR_US)
    records, defects = [], []
    for entity in tenant.tables:
        items = history.state[entity]
        changes = [c for c in history.changes if c.entity == entity]
        # The full export is the state at t0: the final state with the post-t0 changes undone.
        at_t0 = dict(items)
        for c in reversed(changes):
            if c.old is None:
                at_t0.pop(c.key, None)
            else:
                at_t0[c.key] = c.old
        if spec.defects:
            defects += inject_defects(tenant, entity, at_t0, spec.defects, random.Random(rng.random()))
        records.append(write_full_export(store, tenant, entity, at_t0.values(), t0, rng))
        seq_base = 10**20 + int.from_bytes(hashlib.md5(entity.encode()).digest()[:3], "big")
        i = 0
        for lo in range(t0, end, step):
            hi = min(lo + step, end)
            window = []
            while i < len(changes) and changes[i].ts < hi:
                window.append(changes[i])
                i += 1
            records.append(write_incremental_export(store, tenant, entity, window, lo, hi, rng))
            if spec.streams:
                records += write_stream_files(store, tenant, entity, window, lo, hi, rng,
                                              seq_base + i - len(window))
        truth = Path(truth_dir) / tenant.tenant_id
        truth.mkdir(parents=True, exist_ok=True)
        lines = b"".join(orjson.dumps(items[k]) + b"\n" for k in sorted(items))
        (truth / f"{entity}.jsonl.gz").write_bytes(gzip.compress(lines, mtime=0))
    aggregates = tenant_aggregates({e: history.state[e] for e in tenant.tables})
    return {
        "tenant_id": tenant.tenant_id,
        "items": sum(len(history.state[e]) for e in tenant.tables),
        "changes": len(history.changes),
        "exports": [record_dict(r) for r in records],
        "aggregates": aggregates,
        "defects": defects,
        "seconds": round(time.perf_counter() - started, 3),
    }


def simulate_fleet(tenants: list[Tenant], spec: FleetSpec, out: str | os.PathLike,
                   landing_url: str | None = None, workers: int | None = None,
                   s3_client=None) -> dict:
    """Simulate every tenant; landing files go to `landing_url` (default <out>/landing, or an
    s3:// URL) and ground truth to <out>/truth. Returns the run's summary."""
    out = Path(out)
    landing_url = landing_url or str(out / "landing")
    truth_dir = out / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # boto3 clients (and moto's in-process mock) do not cross process boundaries: S3 runs serial.
    if workers is None:
        workers = 1 if landing_url.startswith("s3://") else min(len(tenants), os.cpu_count() or 1)
    if workers > 1:
        with process_pool(workers, __name__) as pool:
            results = list(pool.map(simulate_tenant, tenants, [spec] * len(tenants),
                                    [landing_url] * len(tenants), [str(truth_dir)] * len(tenants)))
    else:
        results = [simulate_tenant(t, spec, landing_url, str(truth_dir), s3_client) for t in tenants]
    per_tenant = {r["tenant_id"]: r["aggregates"] for r in results}
    (truth_dir / "exports.jsonl").write_bytes(
        b"".join(orjson.dumps(e) + b"\n" for r in results for e in r["exports"]))
    (truth_dir / "aggregates.json").write_bytes(orjson.dumps(
        {"tenants": per_tenant, "fleet": fleet_aggregates(per_tenant)}, option=orjson.OPT_INDENT_2))
    (truth_dir / "defects.jsonl").write_bytes(b"".join(orjson.dumps(d) + b"\n" for r in results for d in r["defects"]))
    (truth_dir / "creditors.json").write_bytes(orjson.dumps(SPELLING_TO_CREDITOR,
                                                            option=orjson.OPT_INDENT_2))
    seconds = time.perf_counter() - started
    items = sum(r["items"] for r in results)
    return {
        "tenants": len(results), "items": items, "changes": sum(r["changes"] for r in results),
        "exports": sum(len(r["exports"]) for r in results), "seconds": round(seconds, 2),
        "items_per_second": round(items / seconds) if seconds else None,
        "landing": landing_url, "truth": str(truth_dir),
    }
