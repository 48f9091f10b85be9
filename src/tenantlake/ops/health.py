"""One row per (tenant, table): how fresh it is against its objective, and what its runs did.

  watermark         the end of the last export window published (tenantlake.watermarks)
  lag               now - watermark; `late` when it exceeds the table's freshness objective
  state             failing  the latest batch attempt failed (batch log), or the latest run's
                             summary lists the table as failed (an export refused, a task that died,
                             an invalid registry entry: failures that leave no batch behind)
                    late     lag over the objective
                    never    nothing published yet (no watermark)
                    ok       otherwise
  last run          the run of the latest batch attempt, and when it was logged
  window figures    rows in (items), loaded (published to the lake), quarantined, batches, and the
                    distinct drifts (path and kind) of the batches logged in the last `window`
  bytes             exported (billed) and stored (Parquet), all time
  cost_usd_month    the last 30 days' estimated cost as a monthly rate (tenantlake.ops.costs)

Rows sort worst first: failing, late, never, ok; within a state, by lag over objective.
Disabled tenants are left out; an invalid registry entry shows as failing, one row per table.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta

import orjson
import pyarrow as pa

from tenantlake import watermarks
from tenantlake.lake.catalog import BATCH_LOG, Lake
from tenantlake.ops.config import Objectives, Prices
from tenantlake.ops.costs import BATCH_COLUMNS, batch_costs, cost_per_month
from tenantlake.registry import Registry
from tenantlake.storage import Store

log = logging.getLogger(__name__)

STATES = ("failing", "late", "never", "ok")  # worst first
WINDOW = timedelta(hours=24)
ERROR_LIMIT = 1000  # characters of a failure's reason kept (the warehouse column's width)
HEALTH_COLUMNS = BATCH_COLUMNS + ("items", "quarantined", "drift", "reason", "export_time")
RUNS = "_state/runs/"


@dataclass(frozen=True)
class TableHealth:
    tenant_id: str
    entity: str
    state: str
    objective_seconds: int
    lag_seconds: int | None = None  # None: never published
    late_by_seconds: int | None = None  # lag over the objective, when late
    watermark: datetime | None = None
    last_published_at: datetime | None = None
    last_export_id: str | None = None
    last_run_id: str | None = None
    last_attempt_at: datetime | None = None
    last_outcome: str | None = None
    error: str | None = None  # why it is failing (no data values: batch-log reasons, run summaries)
    batches: int = 0  # in the window, published
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    drift_count: int = 0
    bytes_exported: int = 0
    bytes_stored: int = 0
    cost_usd_month: float = 0.0
    computed_at: datetime | None = None

    @property
    def rank(self) -> tuple:
        ratio = (self.lag_seconds or 0) / self.objective_seconds
        return STATES.index(self.state), -ratio, self.tenant_id, self.entity


TENANT_HEALTH_SCHEMA = pa.schema([
    pa.field("tenant_id", pa.string(), nullable=False),
    pa.field("entity", pa.string(), nullable=False),
    pa.field("state", pa.string(), nullable=False),
    pa.field("objective_seconds", pa.int64(), nullable=False),
    pa.field("lag_seconds", pa.int64()),
    pa.field("late_by_seconds", pa.int64()),
    pa.field("watermark", pa.timestamp("us", tz="UTC")),
    pa.field("last_published_at", pa.timestamp("us", tz="UTC")),
    pa.field("last_export_id", pa.string()),
    pa.field("last_run_id", pa.string()),
    pa.field("last_attempt_at", pa.timestamp("us", tz="UTC")),
    pa.field("last_outcome", pa.string()),
    pa.field("error", pa.string()),
    pa.field("batches", pa.int64()),
    pa.field("rows_in", pa.int64()),
    pa.field("rows_loaded", pa.int64()),
    pa.field("rows_quarantined", pa.int64()),
    pa.field("drift_count", pa.int64()),
    pa.field("bytes_exported", pa.int64()),
    pa.field("bytes_stored", pa.int64()),
    pa.field("cost_usd_month", pa.float64()),
    pa.field("computed_at", pa.timestamp("us", tz="UTC")),
])
assert [f.name for f in TENANT_HEALTH_SCHEMA] == [f.name for f in fields(TableHealth)]


# ---- inputs -----------------------------------------------------------------------------------

def read_batch_log(lake: Lake, columns=HEALTH_COLUMNS) -> pa.Table | None:
    """The batch log's columns the figures need (None before the first batch)."""
    if not lake.exists("ops", BATCH_LOG):
        return None
    table = lake.table("ops", BATCH_LOG, refresh=True)
    if table.current_snapshot() is None:
        return None
    rows = table.scan(selected_fields=tuple(columns)).to_arrow()
    return rows if rows.num_rows else None


def read_watermarks(state: Store, workers: int = 16) -> dict[tuple[str, str], watermarks.Watermark]:
    """Every (tenant, table)'s watermark, read in parallel (one small object each, in S3)."""
    keys = [k for k in state.list("_state/watermarks/") if k.endswith(".json")]

    def one(key: str):
        tenant_part, name = key.split("/")[-2:]
        tenant_id, entity = tenant_part.removeprefix("tenant_id="), name.removesuffix(".json")
        return (tenant_id, entity), watermarks.read(state, tenant_id, entity)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return {k: m for k, m in pool.map(one, keys) if m is not None}


@dataclass(frozen=True)
class RunFailures:
    """The latest finished run, when its summary was written, and the tables it lists as failed,
    each with its reason."""

    run_id: str | None = None
    at: datetime | None = None
    reasons: dict[tuple[str, str], str] = field(default_factory=dict)


def latest_run_failures(state: Store) -> RunFailures:
    latest = None
    for key in state.list(RUNS):
        if not key.endswith("/summary.json"):
            continue
        doc = orjson.loads(state.get(key))
        if latest is None or (doc.get("written_at") or "") > (latest.get("written_at") or ""):
            latest = doc
    if latest is None:
        return RunFailures()
    reasons = {}
    for tenant_id, t in (latest.get("tenants") or {}).items():
        for line in t.get("failed") or []:
            entity, _, why = line.partition(": ")
            reasons[(tenant_id, entity)] = why
    for item in latest.get("failed") or []:
        tenant_id, _, entity = item.partition("/")
        reasons.setdefault((tenant_id, entity), "failed in the latest run")
    written = latest.get("written_at")
    return RunFailures(latest.get("run_id"), datetime.fromisoformat(written) if written else None, reasons)


# ---- figures ----------------------------------------------------------------------------------

def _drift_keys(text: str | None) -> set[tuple]:
    if not text:
        return set()
    try:
        return {(d.get("path"), d.get("what")) for d in orjson.loads(text) if isinstance(d, dict)}
    except orjson.JSONDecodeError:
        return set()


def table_health(registry: Registry, batches: pa.Table | None, marks: dict, run_failures: RunFailures, *,
                 now: datetime, objectives: Objectives, prices: Prices,
                 window: timedelta = WINDOW) -> list[TableHealth]:
    """The rows (see the module doc), worst first."""
    since = now - window
    latest: dict[tuple[str, str], dict] = {}
    published: dict[tuple[str, str], dict] = {}
    recent: dict[tuple[str, str], dict] = defaultdict(lambda: {"batches": 0, "rows_in": 0, "rows_loaded": 0,
                                                               "rows_quarantined": 0, "drift": set()})
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    costs: dict[tuple[str, str], float] = {}
    if batches is not None:
        for r in batches.to_pylist():
            key = (r["tenant_id"], r["entity"])
            if key not in latest or r["logged_at"] > latest[key]["logged_at"]:
                latest[key] = r
            if r["outcome"] != "published":
                continue
            if key not in published or r["logged_at"] > published[key]["logged_at"]:
                published[key] = r
            totals[key][0] += r["bytes_exported"] or 0
            totals[key][1] += r["bytes_stored"] or 0
            if r["logged_at"] >= since:
                w = recent[key]
                w["batches"] += 1
                w["rows_in"] += r["items"] or 0
                w["rows_loaded"] += r["rows"] or 0
                w["rows_quarantined"] += r["quarantined"] or 0
                w["drift"] |= _drift_keys(r["drift"])
        costs = cost_per_month(batch_costs(batches.select(list(BATCH_COLUMNS)), prices), prices, now)

    out = []
    for tenant in registry.enabled:
        for entity in tenant.tables:
            key = (tenant.tenant_id, entity)
            objective = int(objectives.objective(tenant, entity).total_seconds())
            mark = marks.get(key)
            last, pub, w = latest.get(key), published.get(key), recent.get(key) or recent.default_factory()
            lag = int((now - datetime.fromtimestamp(mark.to_us / 1e6, UTC)).total_seconds()) if mark else None
            error = None
            attempt = (last["run_id"], last["logged_at"], last["outcome"]) if last else (None, None, None)
            if last is not None and last["outcome"] == "failed":
                error = last["reason"] or "the latest batch failed"
            elif key in run_failures.reasons:  # a failure that left no batch: that run is the last one
                error = run_failures.reasons[key]
                attempt = (run_failures.run_id, run_failures.at, "failed")
            error = error[:ERROR_LIMIT] if error else None
            state = ("failing" if error else "never" if mark is None
                     else "late" if lag > objective else "ok")
            out.append(TableHealth(
                tenant.tenant_id, entity, state, objective, lag,
                lag - objective if state == "late" else None,
                datetime.fromtimestamp(mark.to_us / 1e6, UTC) if mark else None,
                pub["logged_at"] if pub else None, pub["export_id"] if pub else None,
                *attempt, error,
                w["batches"], w["rows_in"], w["rows_loaded"], w["rows_quarantined"], len(w["drift"]),
                totals[key][0] if key in totals else 0, totals[key][1] if key in totals else 0,
                round(costs.get(key, 0.0), 6), now))
    return sorted(out + _invalid_entries(registry, objectives, now), key=lambda h: h.rank)


def _invalid_entries(registry: Registry, objectives: Objectives, now: datetime) -> list[TableHealth]:
    """A failing row per table of each invalid registry entry; a tenant listed twice is one row
    per table (two would break the warehouse's key of ops.tenant_health)."""
    invalid: dict[tuple[str, str], list[str]] = {}
    for bad in registry.invalid:
        if bad.enabled:
            for entity in bad.entities or ("-",):
                invalid.setdefault((bad.tenant_id or f"tenants[{bad.index}]", entity), []).append(bad.message)
    return [TableHealth(name, entity, "failing", int(objectives.objective(None, entity).total_seconds()),
                        computed_at=now, error=f"invalid registry entry: {'; '.join(messages)}"[:ERROR_LIMIT])
            for (name, entity), messages in invalid.items()]  # objective of entity "-": the default


def health_table(rows: list[TableHealth]) -> pa.Table:
    return pa.Table.from_pylist([asdict(r) for r in rows], schema=TENANT_HEALTH_SCHEMA)


def collect(lake: Lake, state: Store, registry: Registry, *, now: datetime | None = None,
            objectives: Objectives | None = None, prices: Prices | None = None,
            window: timedelta = WINDOW) -> tuple[list[TableHealth], pa.Table | None]:
    """The health rows from the lake, the state store and the registry; and the batch-log
    extract they came from (the cost table reuses it)."""
    from tenantlake.lifecycle import offboarded_tenants
    from tenantlake.ops.config import load_objectives, load_prices

    now = now or datetime.now(UTC)
    batches = read_batch_log(lake)
    rows = table_health(registry, batches, read_watermarks(state), latest_run_failures(state), now=now,
                        objectives=objectives or load_objectives(), prices=prices or load_prices(), window=window)
    gone = offboarded_tenants(state)  # still in the registry, but refused by planning: not the fleet's
    return [r for r in rows if r.tenant_id not in gone], batches
