"""Bring a shard of tenants' table up to date: the unit of work one task runs.

For each tenant the shard finds what to ingest after its watermark — the exports the simulator
landed (local mode) or the ones DynamoDB completed for us (aws mode, tenantlake.tasks), and for
tenants whose changes come from DynamoDB Streams, the stream files landed since — stages them in
order, then the whole shard is audited and published together (tenantlake.ingest) and each
tenant's watermark moves to its last published batch.

One tenant's problem never stops another: a tenant whose export cannot be read, or whose batch
fails its audit, keeps its watermark before that batch (its later windows wait, since windows must
follow on without a gap) and is reported with the reason; every other tenant publishes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from pyiceberg.expressions import And, EqualTo, In

from tenantlake import watermarks
from tenantlake.errors import heals
from tenantlake.exports import missing
from tenantlake.formats.manifest import ExportError, parse_time
from tenantlake.ingest import BatchResult, Ingest, KeyFor, Staged
from tenantlake.lake.catalog import BATCH_LOG, Lake
from tenantlake.lake.read import scan
from tenantlake.registry import Tenant
from tenantlake.storage import Store

log = logging.getLogger(__name__)
ENVELOPES = ("pipes", "firehose")


@dataclass(frozen=True)
class Landed:
    summary_key: str
    kind: str
    from_us: int | None
    to_us: int


@dataclass
class TableOutcome:
    """What one (tenant, table) did in a run: small enough for XCom and the run summary."""

    tenant_id: str
    entity: str
    batches: list[dict] = field(default_factory=list)
    watermark_us: int | None = None
    error: str | None = None  # why the table stopped, naming the file and the problem
    heals: bool = False  # whether a retry could help (throttling, a network error)

    def add(self, r: BatchResult) -> None:
        self.batches.append({"export_id": r.export_id, "kind": r.kind, "items": r.items, "rows": r.rows,
                             "quarantined": r.quarantined, "erased": r.erased, "outcome": r.outcome})

    def summary(self) -> dict:
        done = [b for b in self.batches if b["outcome"] in ("published", "replayed")]
        return {"tenant_id": self.tenant_id, "entity": self.entity, "batches": len(done),
                "items": sum(b["items"] for b in done), "rows": sum(b["rows"] for b in done),
                "quarantined": sum(b["quarantined"] for b in done), "erased": sum(b["erased"] for b in done),
                "watermark_us": self.watermark_us, "error": self.error, "heals": self.heals}


def landed_exports(landing: Store, tenant_id: str, entity: str) -> list[Landed]:
    """Exports whose summary has landed for the tenant's table, oldest first."""
    found = []
    for key in landing.list(f"tenant={tenant_id}/table={entity}/AWSDynamoDB/"):
        if not key.endswith("/manifest-summary.json"):
            continue
        try:
            s = orjson.loads(landing.get(key))
        except orjson.JSONDecodeError as e:
            raise ExportError(f"{key}: not valid JSON ({e})") from None
        if s.get("exportType", "FULL_EXPORT") == "FULL_EXPORT":
            at = parse_time(s.get("exportTime") or s.get("startTime"), key)
            found.append(Landed(key, "FULL_EXPORT", None, at))
        else:
            found.append(Landed(key, "INCREMENTAL_EXPORT", parse_time(s.get("exportFromTime"), key),
                                parse_time(s.get("exportToTime"), key)))
    return sorted(found, key=lambda e: (e.to_us, e.kind != "FULL_EXPORT"))


def pending(exports: list[Landed], mark: watermarks.Watermark | None, resnapshot: bool,
            incremental: bool = True, gaps: list[str] | None = None) -> list[Landed]:
    """What to ingest after the watermark: a full export to start from (the first run, or a forced
    re-snapshot), then the incremental windows that follow on without a gap (none for a tenant
    whose changes come from streams). At a gap: with `gaps`, the windows before it, the gap said
    there; without, an ExportError."""
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
    if not incremental:
        return todo
    windows = [e for e in exports if e.kind == "INCREMENTAL_EXPORT"]
    while True:
        # Of the windows that carry on from `at`, the one reaching furthest: a wider window exported
        # again over a lost range covers it (taken in end order, a narrower one after the hole was
        # met first: a false gap for ever); of one window exported twice, the later export (a
        # re-export of a broken one).
        onward = [e for e in windows if e.from_us <= at < e.to_us]
        if onward:
            e = max(onward, key=lambda e: (e.to_us, e.summary_key))
            todo.append(e)
            at = e.to_us
            continue
        later = [e for e in windows if e.to_us > at]
        if later:
            e = min(later, key=lambda e: (e.from_us, e.summary_key))
            gap = (f"{e.summary_key}: gap in incremental exports: the window starts at "
                   f"{watermarks.when(e.from_us)}, but data is published only up to {watermarks.when(at)}")
            if gaps is None:
                raise ExportError(gap)
            gaps.append(gap)
        return todo


def published_sources(lake: Lake, entity: str, tenant_ids: set[str]) -> set[tuple[str, str]]:
    """(tenant, source) of every batch already published: stream files are known by their key."""
    rows = scan(lake, "ops", BATCH_LOG, And(And(In("tenant_id", tenant_ids), EqualTo("entity", entity)),
                                           EqualTo("outcome", "published")), ("tenant_id", "source")) \
        if tenant_ids else None
    if rows is None:
        return set()
    return set(zip(rows["tenant_id"].to_pylist(), rows["source"].to_pylist(), strict=True))


def stream_files(landing: Store, tenant_id: str, entity: str) -> list[tuple[str, str]]:
    """(envelope, key) of every stream file landed for the tenant's table: Pipes files, then Firehose
    files, each in key order (their prefixes are dated, so key order is arrival order). A table has
    one stream; latest-wins orders changes by their own times, whichever file holds them."""
    return [(envelope, key) for envelope in ENVELOPES
            for key in landing.list(f"tenant={tenant_id}/table={entity}/streams/{envelope}/")]


@dataclass
class Work:
    """One tenant's batches to ingest this run, in order."""

    tenant: Tenant
    exports: list[str] = field(default_factory=list)  # manifest-summary keys
    streams: list[tuple[str, str]] = field(default_factory=list)  # (envelope, key)
    stop: str | None = None  # why it stops short of what is landed (a gap): the table fails after these


def sync_shard(landing: Store, lake: Lake, state: Store, entity: str, work: list[Work], run_id: str,
               key_for: KeyFor, *, erased: dict[str, set[str]] | None = None, workers: int = 1,
               on_progress: Callable[[str], None] | None = None) -> list[TableOutcome]:
    """Ingest every tenant's batches of the shard and publish them in one commit per zone; move
    each tenant's watermark (kept in `state`) to its last published batch."""
    say = on_progress or log.info
    outcomes = {w.tenant.tenant_id: TableOutcome(w.tenant.tenant_id, entity) for w in work}
    staged: list[Staged] = []
    order: dict[str, list[Staged]] = {}
    from tenantlake.lifecycle import scrub_landed

    with Ingest(lake, entity, run_id, key_for, erased=erased, workers=workers, scrub=scrub_landed) as session:
        for w in work:
            tid = w.tenant.tenant_id
            try:
                for key in w.exports:
                    s = session.stage_export(landing, key, tid, w.tenant)
                    staged.append(s)
                    order.setdefault(tid, []).append(s)
                for envelope, key in w.streams:
                    s = session.stage_stream(landing, key, tid, envelope, w.tenant)
                    staged.append(s)
                    order.setdefault(tid, []).append(s)
            except Exception as e:  # noqa: BLE001 - one tenant's failure must not stop the shard
                outcomes[tid].error, outcomes[tid].heals = f"{type(e).__name__}: {e}", heals(e)
                say(f"{tid} {entity}: stopped: {outcomes[tid].error}")
            else:
                if w.stop:  # the batches before it publish; the table fails, not to be retried at once
                    outcomes[tid].error, outcomes[tid].heals = f"ExportError: {w.stop}", False
                    say(f"{tid} {entity}: stops here: {w.stop}")
        results, _ = session.publish(staged) if staged else ([], None)
    by_batch: dict[tuple[str, str], BatchResult] = {}
    for r in results:  # the first result of an export handed in twice is the one that counts
        by_batch.setdefault((r.tenant_id, r.export_id), r)
    for tid, batches in order.items():
        out = outcomes[tid]
        for s in batches:
            r = by_batch[(tid, s.export_id)]
            out.add(r)
            say(f"{tid} {entity}: {r.line()}")
            if r.outcome in ("failed", "withheld"):
                out.error = out.error or r.reason
            elif _carries_on(watermarks.read(state, tid, entity), s):
                watermarks.advance(state, tid, entity, watermarks.Watermark(r.export_time_us, s.export_id, s.kind))
    for w in work:
        mark = watermarks.read(state, w.tenant.tenant_id, entity)
        outcomes[w.tenant.tenant_id].watermark_us = mark.to_us if mark else None
    return list(outcomes.values())


def _carries_on(mark: watermarks.Watermark | None, s) -> bool:
    """Whether a published batch carries the table's data on from its watermark, which means
    "published up to here": a full export starts it (again), a stream file follows it, an
    incremental window only where it starts at or before it. A backfilled window past a gap (or
    before the table's first full export) must not move it over what is still missing: the missing
    window, landing later, was skipped for good (independent probe)."""
    if s.kind != "INCREMENTAL_EXPORT":
        return True
    return mark is not None and s.window_from_us is not None and s.window_from_us <= mark.to_us


def plan_local(landing: Store, lake: Lake, state: Store, tenant: Tenant, entity: str,
               resnapshot: bool = False) -> Work:
    """What the simulator (or any copy of AWS's layout) has landed for the tenant after its watermark."""
    mark = watermarks.read(state, tenant.tenant_id, entity)
    streams = tenant.change_source == "streams"
    gaps: list[str] = []
    todo = pending(landed_exports(landing, tenant.tenant_id, entity), mark, resnapshot, not streams, gaps)
    work = Work(tenant, [e.summary_key for e in todo], stop=gaps[0] if gaps else None)
    if streams and (mark is not None or todo):
        done = {src for t, src in published_sources(lake, entity, {tenant.tenant_id}) if t == tenant.tenant_id}
        work.streams = [(env, key) for env, key in stream_files(landing, tenant.tenant_id, entity) if key not in done]
    elif waiting := stream_files(landing, tenant.tenant_id, entity):  # landed, but not read this run: say so
        why = ("wait for the table's first FULL export (changes apply to a snapshot)" if streams else
               "are not read: the registry's change_source for this tenant is exports")
        log.warning("%s %s: %d stream file(s) %s (first: %s)", tenant.tenant_id, entity, len(waiting), why,
                    waiting[0][1])
    return work


def published_windows(lake: Lake, entity: str, tenant_id: str) -> list[tuple[datetime, datetime]]:
    """The incremental windows of a tenant's table already published, as (from, to)."""
    rows = scan(lake, "ops", BATCH_LOG, And(And(EqualTo("tenant_id", tenant_id), EqualTo("entity", entity)),
                                           EqualTo("outcome", "published")), ("kind", "window_from", "export_time"))
    rows = rows.to_pylist() if rows is not None else []
    return [(r["window_from"], r["export_time"]) for r in rows
            if r["kind"] == "INCREMENTAL_EXPORT" and r["window_from"] and r["export_time"]]


def plan_backfill_local(landing: Store, lake: Lake, tenant: Tenant, entity: str, start: datetime,
                        end: datetime) -> Work:
    """The landed incremental exports inside [start, end) whose windows are not published yet."""
    covered = published_windows(lake, entity, tenant.tenant_id)
    todo = []
    for e in landed_exports(landing, tenant.tenant_id, entity):
        if e.kind != "INCREMENTAL_EXPORT":
            continue
        lo, hi = (datetime.fromtimestamp(us / 1e6, UTC) for us in (e.from_us, e.to_us))
        if start <= lo and hi <= end and missing(lo, hi, covered):
            todo.append(e.summary_key)
    return Work(tenant, todo)
