"""Bring one (tenant, table) up to date: the unit of work each mapped task runs.

Local mode (the embedded default) finds the exports the simulator landed; aws mode asks DynamoDB
for them (tenantlake.exports) and waits. Both then ingest in order and advance the watermark
after each publish. Windows must follow on from the watermark: a gap is an error, never a skip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from tenantlake import watermarks
from tenantlake.formats.manifest import ExportError, parse_time
from tenantlake.ingest import BatchResult, ingest_export, ingest_stream_file, stream_batch_key
from tenantlake.registry import Tenant
from tenantlake.storage import Store


@dataclass(frozen=True)
class Landed:
    summary_key: str
    kind: str
    from_us: int | None
    to_us: int


@dataclass
class SyncResult:
    tenant_id: str
    entity: str
    batches: list[dict] = field(default_factory=list)
    watermark_us: int | None = None

    def add(self, r: BatchResult) -> None:
        self.batches.append({"export_id": r.export_id, "kind": r.kind, "items": r.items, "rows": r.rows,
                             "quarantined": r.quarantined})

    def summary(self) -> dict:
        """Small enough for XCom: counts, not rows."""
        return {"tenant_id": self.tenant_id, "entity": self.entity, "batches": len(self.batches),
                "items": sum(b["items"] for b in self.batches), "rows": sum(b["rows"] for b in self.batches),
                "quarantined": sum(b["quarantined"] for b in self.batches), "watermark_us": self.watermark_us}


def landed_exports(landing: Store, tenant_id: str, entity: str) -> list[Landed]:
    """Exports whose summary has landed for the tenant's table, oldest first."""
    found = []
    for key in landing.list(f"tenant={tenant_id}/table={entity}/AWSDynamoDB/"):
        if not key.endswith("/manifest-summary.json"):
            continue
        s = orjson.loads(landing.get(key))
        if s.get("exportType", "FULL_EXPORT") == "FULL_EXPORT":
            at = parse_time(s.get("exportTime") or s.get("startTime"), key)
            found.append(Landed(key, "FULL_EXPORT", None, at))
        else:
            found.append(Landed(key, "INCREMENTAL_EXPORT", parse_time(s["exportFromTime"], key),
                                parse_time(s["exportToTime"], key)))
    return sorted(found, key=lambda e: (e.to_us, e.kind != "FULL_EXPORT"))


def pending(exports: list[Landed], mark: watermarks.Watermark | None, resnapshot: bool) -> list[Landed]:
    """What to ingest after the watermark: a full export to start from (the first run, or a
    forced re-snapshot), then the incremental windows that follow on without a gap."""
    start = None if resnapshot else mark
    todo = []
    if start is None:
        fulls = [e for e in exports if e.kind == "FULL_EXPORT"]
        if not fulls:
            return []
        todo.append(fulls[-1])
        at = fulls[-1].to_us
    else:
        at = start.to_us
    for e in exports:
        if e.kind != "INCREMENTAL_EXPORT" or e.to_us <= at:
            continue
        if e.from_us > at:
            raise ExportError(f"{e.summary_key}: gap in incremental exports: the window starts at "
                              f"{e.from_us}, but data is published only up to {at}")
        todo.append(e)
        at = e.to_us
    return todo


def sync_landed(landing: Store, lake: Store, tenant: Tenant, entity: str, run_id: str,
                resnapshot: bool = False, workers: int = 1) -> SyncResult:
    result = SyncResult(tenant.tenant_id, entity)
    mark = watermarks.read(lake, tenant.tenant_id, entity)
    for e in pending(landed_exports(landing, tenant.tenant_id, entity), mark, resnapshot):
        r = ingest_export(landing, e.summary_key, lake, tenant_id=tenant.tenant_id, entity=entity,
                          tenant=tenant, run_id=run_id, workers=workers)
        result.add(r)
        watermarks.advance(lake, tenant.tenant_id, entity, watermarks.Watermark(e.to_us, r.export_id, r.kind))
    mark = watermarks.read(lake, tenant.tenant_id, entity)
    result.watermark_us = mark.to_us if mark else None
    return result


def sync_streams(landing: Store, lake: Store, tenant: Tenant, entity: str, run_id: str) -> SyncResult:
    """Stream files landed by Pipes or Firehose that have no commit marker yet."""
    result = SyncResult(tenant.tenant_id, entity)
    for envelope in ("pipes", "firehose"):
        for key in landing.list(f"tenant={tenant.tenant_id}/table={entity}/streams/{envelope}/"):
            if lake.exists(stream_batch_key(tenant.tenant_id, entity, key).commit_key):
                continue
            result.add(ingest_stream_file(landing, key, lake, tenant_id=tenant.tenant_id,
                                               entity=entity, envelope=envelope, run_id=run_id))
    return result
