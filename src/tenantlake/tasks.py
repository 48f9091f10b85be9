"""The Airflow side of tenant_exports: what its tasks do. The DAG file only wires these.

Shape: `plan` reads the registry at run time (never at parse time) and cuts the work into shards:
per entity, groups of tenants (`shard_size`: one tenant per shard for small fleets, so the grid
reads `agency-004 / Debt`; for large ones at most TENANTLAKE_SHARDS_PER_ENTITY shards per entity,
so 2,000 tenants x 8 tables stay far inside Airflow's max_map_length and pay a task's fixed cost,
~3.5 s of imports and ~75 ms of Airflow's own handling, and a shard's commits once per shard, not
once per tenant). One mapped
SyncShardOperator per shard syncs its tenants and publishes them in one Iceberg commit per zone.

Failure: a tenant's problem is caught, recorded, and the shard's other tenants publish. The shard
task then fails without retries when every problem is one that cannot heal (a bad manifest, a
refused role, a data-contract error: AirflowFailException, so the run goes red at once) and with
retries when one could (throttling, a network error). `report` (ALL_DONE) writes the run summary
and fails the run listing every tenant table that failed; `publish_signal` (ALL_DONE) emits the
lake's asset event, which schedules warehouse_load, only when the run published something.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from airflow.sdk import BaseOperator, task
from airflow.triggers.base import BaseTrigger, TriggerEvent

from tenantlake.lineage import SyncShardLineage, WarehouseLoadLineage

POOL = "tenant_exports"  # caps concurrent pulls; created by `make demo` and docker-compose
# How long an export may stay IN_PROGRESS before it is reported stuck, and how often DescribeExport
# is asked (TENANTLAKE_EXPORT_TIMEOUT_MINUTES, TENANTLAKE_EXPORT_POLL_SECONDS, read when a task runs).
EXPORT_TIMEOUT_MINUTES = 180
EXPORT_POLL_SECONDS = 60
RUN_RETENTION_DAYS = 14  # run summaries under _state/runs older than this are pruned by report


def _runtime():
    from tenantlake.connections import runtime

    return runtime()


def shards_per_entity() -> int:
    return max(1, int(os.environ.get("TENANTLAKE_SHARDS_PER_ENTITY", "16")))


def shard_size(tenants: int) -> int:
    """Tenants per shard: one each for a small fleet (the grid names each tenant and table); for a
    larger one, at most TENANTLAKE_SHARDS_PER_ENTITY shards of at least TENANTLAKE_SHARD_MIN_TENANTS
    (default 25), since a shard's commits (~50 ms each, one per zone) are paid once per shard."""
    per = shards_per_entity()
    if tenants <= per:
        return 1
    return max(math.ceil(tenants / per), int(os.environ.get("TENANTLAKE_SHARD_MIN_TENANTS", "25")))


def _label(tenant_ids: list[str], entity: str) -> str:
    if len(tenant_ids) == 1:
        return f"{tenant_ids[0]} / {entity}"
    return f"{tenant_ids[0]} .. {tenant_ids[-1]} ({len(tenant_ids)} tenants) / {entity}"


def plan_shards(registry, params: dict, offboarded: set[str] = frozenset()) -> list[dict]:
    """The run's shards: [{"entity", "tenants", "label"}], plus failing shards for the registry
    entries that are invalid or offboarded ({"problems": {entry: message}}): one per entry for a
    few, so each failure shows alone; grouped like tenants for many, so that a bad bulk edit of
    the registry stays within Airflow's max_map_length and the valid tenants still run."""
    wanted = set(params.get("tenants") or [])
    tables = set(params.get("tables") or [])
    shards: list[dict] = []
    by_entity: dict[str, list[str]] = {}
    problems: dict[str, list[str]] = {}
    for t in registry.enabled:
        if wanted and t.tenant_id not in wanted:
            continue
        if t.tenant_id in offboarded:
            problems.setdefault(t.tenant_id, []).append(
                f"tenant {t.tenant_id} was offboarded; remove it from the registry")
            continue
        for entity in t.tables:
            if not tables or entity in tables:
                by_entity.setdefault(entity, []).append(t.tenant_id)
    for bad in registry.invalid:
        if not bad.enabled or (wanted and bad.tenant_id not in wanted):
            continue
        problems.setdefault(bad.tenant_id or f"tenants[{bad.index}]", []).append(bad.message)  # a duplicate: once
    names = sorted(problems)
    size = shard_size(len(names))
    for i in range(0, len(names), size):
        group = names[i:i + size]
        shards.append({"entity": "-", "tenants": group, "label": _label(group, "registry"),
                       "problems": {n: "; ".join(problems[n]) for n in group}})
    for entity, tenant_ids in sorted(by_entity.items()):
        size = shard_size(len(tenant_ids))
        for i in range(0, len(tenant_ids), size):
            group = tenant_ids[i:i + size]
            shards.append({"entity": entity, "tenants": group, "label": _label(group, entity)})
    return shards


@task(retries=0)
def plan(params: dict | None = None) -> list[dict]:
    """Which tenants each shard pulls in this run (read from the registry at run time)."""
    from airflow.sdk.exceptions import AirflowFailException

    from tenantlake.lifecycle import offboarded_tenants

    try:
        backfill_range(params or {})
    except ValueError as e:
        raise AirflowFailException(f"params: {e}") from None
    runtime = _runtime()
    return plan_shards(runtime.registry, params or {}, offboarded_tenants(runtime.state))


def backfill_range(params: dict):
    """(start, end) of a backfill asked for in the run's params (backfill_from / backfill_to: dates
    or ISO times, UTC), checked against DynamoDB's 35-day point-in-time window; None when none."""
    from datetime import UTC, datetime

    from tenantlake.exports import check_backfill_range

    start, end = params.get("backfill_from"), params.get("backfill_to")
    if not start and not end:
        return None
    if not (start and end):
        raise ValueError("a backfill needs both backfill_from and backfill_to")
    bounds = []
    for text in (start, end):
        value = datetime.fromisoformat(text)
        bounds.append(value if value.tzinfo else value.replace(tzinfo=UTC))
    check_backfill_range(*bounds, datetime.now(UTC))
    return tuple(bounds)


def run_key(run_id: str) -> str:
    return f"_state/runs/{run_id.replace(':', '_').replace('+', '_')}"


class SyncShardOperator(SyncShardLineage, BaseOperator):
    """Bring a shard of tenants' table up to date: find (local) or request (aws) their exports,
    wait for them without holding a worker slot (deferrable), ingest and publish them together."""

    template_fields = ("shard",)
    ui_color = "#d9ead3"

    def __init__(self, *, shard: dict, poll_seconds: float | None = None, timeout_minutes: float | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.shard = shard
        self.poll_seconds = poll_seconds
        self.timeout_minutes = timeout_minutes

    def _waiting(self) -> tuple[float, float]:
        poll = self.poll_seconds or float(os.environ.get("TENANTLAKE_EXPORT_POLL_SECONDS", EXPORT_POLL_SECONDS))
        limit = self.timeout_minutes or float(os.environ.get("TENANTLAKE_EXPORT_TIMEOUT_MINUTES",
                                                                EXPORT_TIMEOUT_MINUTES))
        return poll, limit * 60

    @property
    def entity(self) -> str:
        return self.shard["entity"]

    def _tenants(self, runtime):
        return [runtime.registry.tenant(t) for t in self.shard["tenants"]]

    def execute(self, context) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        if self.shard.get("problems"):
            said = "; ".join(f"{name}: {message}" for name, message in self.shard["problems"].items())
            raise AirflowFailException(f"{self.shard['label']}: {said}"[:4000])
        from tenantlake import sync

        runtime = _runtime()
        params = context["params"]
        resnapshot = set(params.get("resnapshot_tenants") or [])
        backfill = backfill_range(params)
        tenants = self._tenants(runtime)
        if runtime.settings.mode == "local":
            work, problems = [], {}
            for t in tenants:
                try:  # one tenant's unreadable landing must not stop the shard's others
                    work.append(sync.plan_backfill_local(runtime.landing, runtime.lake, t, self.entity, *backfill)
                                if backfill else sync.plan_local(runtime.landing, runtime.lake, runtime.state, t,
                                                                 self.entity, t.tenant_id in resnapshot))
                except Exception as e:  # noqa: BLE001 - reported as that tenant table's failure
                    problems[t.tenant_id] = f"{type(e).__name__}: {e}"
                    self.log.warning("%s %s: %s", t.tenant_id, self.entity, problems[t.tenant_id])
            return self._ingest(context, runtime, work, problems)
        return self._request(context, runtime, tenants, resnapshot, backfill)

    def _requests(self, runtime, tenant, end, resnapshot: set[str], backfill) -> list:
        """What to ask DynamoDB for: a backfill's missing windows, or FULL then the windows since the
        watermark (none for a stream tenant past its full export: its changes are landed records)."""
        from tenantlake import exports, sync, watermarks
        from tenantlake.registry import parse_window

        step = parse_window(tenant.export_window)
        if backfill:
            return exports.backfill_requests(tenant.tenant_id, self.entity, *backfill, step,
                                             sync.published_windows(runtime.lake, self.entity, tenant.tenant_id))
        mark = watermarks.read(runtime.state, tenant.tenant_id, self.entity)
        if tenant.change_source == "streams" and mark is not None and tenant.tenant_id not in resnapshot:
            return []
        return exports.plan_requests(tenant.tenant_id, self.entity, mark.to_us if mark else None, end, step,
                                     tenant.tenant_id in resnapshot)

    def _request(self, context, runtime, tenants, resnapshot: set[str], backfill=None) -> dict:
        from tenantlake import aws, exports, sync

        end = context["data_interval_end"]
        requested: dict[str, list[str]] = {}
        problems: dict[str, str] = {}
        for t in tenants:
            try:
                reqs = self._requests(runtime, t, end, resnapshot, backfill)
                if not reqs:
                    continue
                runtime.key_for(t.tenant_id)  # a missing pseudonym key fails here, before an export is paid for
                dynamodb = aws.tenant_access(t, runtime.central).client("dynamodb")
                requested[t.tenant_id] = [exports.request_once(dynamodb, t, r, runtime.registry.landing_bucket,
                                                               runtime.registry.landing_account_id, runtime.state)
                                          for r in reqs]
                self.log.info("%s %s: %d export(s) requested", t.tenant_id, self.entity, len(reqs))
            except Exception as e:  # noqa: BLE001 - one tenant's failure must not stop the shard
                problems[t.tenant_id] = f"{type(e).__name__}: {e}"
                self.log.warning("%s %s: %s", t.tenant_id, self.entity, problems[t.tenant_id])
        if requested:
            poll, limit = self._waiting()
            self.defer(trigger=ExportsCompleteTrigger(requested, runtime.settings.aws_conn_id, poll, limit),
                       method_name="execute_complete", kwargs={"problems": problems})
        # nothing to wait for: stream tenants and tenants with no window yet still ingest landed streams
        work = [sync.Work(t) for t in tenants if t.tenant_id not in problems]
        return self._ingest(context, runtime, self._with_streams(runtime, work), problems)

    def execute_complete(self, context, event: dict, problems: dict | None = None) -> dict:
        """Runs when the trigger saw every export finish (or fail, or time out): ingest in window order."""
        from tenantlake import exports, sync

        runtime = _runtime()
        problems = dict(problems or {})
        work = {t.tenant_id: sync.Work(t) for t in self._tenants(runtime) if t.tenant_id not in problems}
        for tenant_id, states in event["exports"].items():
            bad = [s for s in states if s["status"] != "COMPLETED"]
            if bad:
                problems[tenant_id] = "; ".join(s["message"] for s in bad)
                work.pop(tenant_id, None)
                continue
            work[tenant_id].exports = [exports.manifest_key(tenant_id, self.entity, s["arn"], s["manifest"])
                                       for s in states]
        return self._ingest(context, runtime, self._with_streams(runtime, list(work.values())), problems)

    def _with_streams(self, runtime, work):
        from tenantlake import sync

        for w in work:
            if w.tenant.change_source == "streams":
                done = {src for _, src in sync.published_sources(runtime.lake, self.entity, {w.tenant.tenant_id})}
                w.streams = [(env, key) for env, key in sync.stream_files(runtime.landing, w.tenant.tenant_id,
                                                                          self.entity) if key not in done]
        return work

    def _ingest(self, context, runtime, work, problems: dict | None = None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from tenantlake import sync, watermarks

        problems = dict(problems or {})
        outcomes = sync.sync_shard(runtime.landing, runtime.lake, runtime.state, self.entity,
                                   [w for w in work if w.exports or w.streams], context["run_id"], runtime.key_for,
                                   erased=runtime.erased({w.tenant.tenant_id for w in work}),
                                   on_progress=self.log.info)
        by_tenant = {o.tenant_id: o.summary() for o in outcomes}
        for w in work:
            by_tenant.setdefault(w.tenant.tenant_id, sync.TableOutcome(w.tenant.tenant_id, self.entity).summary())
        for tenant_id, message in problems.items():
            by_tenant[tenant_id] = {**sync.TableOutcome(tenant_id, self.entity).summary(), "error": message,
                                    "heals": False}
        for tenant_id, s in by_tenant.items():
            if s["watermark_us"] is None:
                mark = watermarks.read(runtime.state, tenant_id, self.entity)
                s["watermark_us"] = mark.to_us if mark else None
        summary = {"label": self.shard["label"], "entity": self.entity, "tables": by_tenant}
        self.lineage_summary = summary  # OpenLineage facets (SyncShardLineage), built after the task
        shard_id = hashlib.sha256(self.shard["label"].encode()).hexdigest()[:16]  # the same on a retry
        runtime.state.put(f"{run_key(context['run_id'])}/{self.entity}/{shard_id}.json", orjson.dumps(summary))
        failed = {t: s for t, s in by_tenant.items() if s["error"]}
        for t, s in by_tenant.items():
            self.log.info("%s %s: %d batches, %d rows, %d quarantined%s", t, self.entity, s["batches"], s["rows"],
                          s["quarantined"], f"; failed: {s['error']}" if s["error"] else "")
        if failed:
            message = "; ".join(f"{t} {self.entity}: {s['error']}" for t, s in sorted(failed.items()))
            if any(s.get("heals") for s in failed.values()):
                raise RuntimeError(f"{len(failed)} tenant table(s) failed, some may heal on retry: {message}")
            raise AirflowFailException(f"{len(failed)} tenant table(s) failed ({len(by_tenant) - len(failed)} other(s) "
                                       f"went through): {message}")
        return {"tables": len(by_tenant), "rows": sum(s["rows"] for s in by_tenant.values())}


class ExportsCompleteTrigger(BaseTrigger):
    """Polls DescribeExport in the triggerer until every export of the shard is COMPLETED, FAILED,
    or still running after the time limit (then reported stuck, naming tenant and export ARN)."""

    def __init__(self, exports: dict[str, list[str]], aws_conn_id: str | None, poll_seconds: int = 60,
                 timeout_seconds: float = EXPORT_TIMEOUT_MINUTES * 60):
        super().__init__()
        self.exports = exports
        self.aws_conn_id = aws_conn_id
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        # Only references cross into the triggerer: never credentials or the ExternalId.
        return ("tenantlake.tasks.ExportsCompleteTrigger",
                {"exports": self.exports, "aws_conn_id": self.aws_conn_id, "poll_seconds": self.poll_seconds,
                 "timeout_seconds": self.timeout_seconds})

    def _poll(self, done: dict[str, list[dict]]) -> dict[str, list[dict]]:
        from tenantlake import aws, errors, exports
        from tenantlake.connections import central_access
        from tenantlake.registry import load_registry

        registry = load_registry()
        if getattr(self, "_central", None) is None:
            self._central = central_access(self.aws_conn_id)  # one per trigger: it refreshes its own role
        central = self._central
        out = {}
        for tenant_id, arns in self.exports.items():
            if tenant_id in done:
                out[tenant_id] = done[tenant_id]
                continue
            try:
                dynamodb = aws.tenant_access(registry.tenant(tenant_id), central).client("dynamodb")
                out[tenant_id] = [_status(exports, dynamodb, arn) for arn in arns]
            except Exception as e:  # noqa: BLE001 - a tenant we cannot ask is reported, not fatal to others
                if errors.heals(e):  # throttled, a network error, expired credentials: ask again next poll
                    out[tenant_id] = [{"arn": arn, "status": "IN_PROGRESS", "manifest": None, "message": None}
                                      for arn in arns]
                    continue
                out[tenant_id] = [{"arn": arn, "status": "FAILED", "manifest": None,
                                   "message": f"{tenant_id}: cannot describe {arn}: {type(e).__name__}: {e}"}
                                  for arn in arns]
        return out

    async def run(self) -> AsyncIterator[TriggerEvent]:  # noqa: C901 - one polling loop, read top-down
        started = time.monotonic()
        done: dict[str, list[dict]] = {}
        while True:
            states = await asyncio.to_thread(self._poll, done)  # boto3 is blocking: off the event loop
            done = {t: s for t, s in states.items() if all(x["status"] in ("COMPLETED", "FAILED") for x in s)}
            waited = time.monotonic() - started
            if len(done) == len(self.exports) or waited >= self.timeout_seconds:
                for tenant_id, s in states.items():
                    if tenant_id not in done:  # stuck: name the tenant and the export
                        states[tenant_id] = [x if x["status"] != "IN_PROGRESS" else {
                            **x, "status": "TIMED_OUT",
                            "message": f"{tenant_id}: export {x['arn']} still IN_PROGRESS after "
                                       f"{_minutes(waited)} (limit {_minutes(self.timeout_seconds)})"}
                                             for x in s]
                yield TriggerEvent({"status": "done", "exports": states, "waited_seconds": round(waited)})
                return
            await asyncio.sleep(self.poll_seconds)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} minutes" if seconds >= 120 else f"{seconds:.0f} seconds"


def _status(exports, dynamodb, arn: str) -> dict:
    """An export's state for the trigger's event; a FAILED export carries AWS's FailureCode and message."""
    try:
        d = exports.describe(dynamodb, arn)
    except exports.ExportFailed as e:
        return {"arn": arn, "status": "FAILED", "manifest": None, "message": str(e)}
    return {**d, "message": None}


def _run_summaries(state, run_id: str) -> list[dict]:
    return [orjson.loads(state.get(k)) for k in state.list(run_key(run_id) + "/") if k.endswith(".json")
            and not k.endswith("/summary.json")]


@task(trigger_rule="all_done", retries=0)
def report(shards: list[dict], run_id: str | None = None) -> dict:
    """The run's summary per tenant, from what each shard left; fails the run listing every tenant
    table that failed or left no word (its task died)."""
    from datetime import UTC, datetime, timedelta

    if shards is None:  # the plan task failed: nothing ran, and its log says why
        raise RuntimeError("the run planned no shards: its plan task failed (its log says why)")
    runtime = _runtime()
    summaries = {(s["entity"], t): v for s in _run_summaries(runtime.state, run_id) for t, v in s["tables"].items()}
    per_tenant: dict[str, dict] = {}
    failed = []
    for shard in shards:
        for tid in shard["tenants"]:
            t = per_tenant.setdefault(tid, {"tables": 0, "failed": [], "items": 0, "rows": 0, "quarantined": 0,
                                            "erased": 0})
            s = summaries.get((shard["entity"], tid))
            problem = shard.get("problems", {}).get(tid)
            if problem or s is None or s["error"]:
                why = problem or (s["error"] if s else "its task ended without a summary")
                t["failed"].append(f"{shard['entity']}: {why}")
                failed.append(f"{tid}/{shard['entity']}")
                continue
            t["tables"] += 1
            for k in ("items", "rows", "quarantined", "erased"):
                t[k] += s[k]
    summary = {"run_id": run_id, "tenants": per_tenant, "failed": failed,
               "published_rows": sum(t["rows"] for t in per_tenant.values()),
               "written_at": datetime.now(UTC).isoformat()}
    runtime.state.put(f"{run_key(run_id)}/summary.json", orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    prune_runs(runtime.state, datetime.now(UTC) - timedelta(days=RUN_RETENTION_DAYS))
    if failed:
        done = sum(t["tables"] for t in per_tenant.values())
        raise RuntimeError(f"{len(failed)} tenant table(s) failed ({done} other(s) went through): "
                           f"{', '.join(failed[:20])}")
    return {"tenants": len(per_tenant), "failed": 0}


def prune_runs(state, older_than) -> int:
    """Delete run folders whose summary is older than the retention (documented: RUN_RETENTION_DAYS)."""
    removed = 0
    for key in state.list("_state/runs/"):
        if not key.endswith("/summary.json"):
            continue
        doc = orjson.loads(state.get(key))
        written = doc.get("written_at")
        if written and written < older_than.isoformat():
            removed += state.delete_prefix(key.rsplit("/", 1)[0] + "/")
    return removed


@task(trigger_rule="all_done", retries=0)
def publish_signal(run_id: str | None = None, outlet_events=None) -> dict:
    """Emits the lake's asset event (warehouse_load's schedule) when this run published rows, with
    an event per lake table written (tenantlake.lineage.run_lake_events); skipped otherwise, so a
    run that published nothing triggers no rebuild."""
    from airflow.sdk.exceptions import AirflowSkipException

    from tenantlake.lineage import run_lake_events

    runtime = _runtime()
    summaries = _run_summaries(runtime.state, run_id)
    rows = sum(v["rows"] for s in summaries for v in s["tables"].values())
    if not rows:
        raise AirflowSkipException("nothing was published in this run")
    tables = run_lake_events(outlet_events, summaries) if outlet_events is not None else []
    return {"rows": rows, "lake_tables": [a.name for a in tables]}


def maintain_lake() -> dict:
    """lake_maintenance's task: compaction, expiry and orphan removal over every table."""
    from tenantlake.lake.upkeep import upkeep

    runtime = _runtime()
    figures = upkeep(runtime.lake, retention_hours=runtime.settings.snapshot_retention_hours)
    return {table: {k: v for k, v in f.items() if k != "notes"} for table, f in figures.items()}


class WarehouseLoadOperator(WarehouseLoadLineage, BaseOperator):
    """warehouse_load's load step (tenantlake.loading.load): every batch the lake published since
    the last run, set-based, per entity; the tenants in `reload_tenants` reloaded whole from the
    lake. An operator so the OpenLineage provider can ask it what it read and wrote. It does not
    fail for a batch that failed its checks (the others are loaded and must be refreshed): the
    `check` step reports it."""

    def execute(self, context) -> dict:
        from tenantlake import loading

        self.lineage_outcomes = []
        out = loading.load(outcomes=self.lineage_outcomes)
        for tenant_id in context["params"].get("reload_tenants") or []:
            reloaded = loading.reload_tenant(tenant_id)
            out["tenants"] = sorted(set(out["tenants"]) | {tenant_id})
            out["failed"] += reloaded["failed"] + reloaded["checks"]
        self.log.info("loaded %s batch(es), %s skipped, %s failed", out["loaded"], out["skipped"], len(out["failed"]))
        return out


@task(retries=0)
def lifecycle_action(params: dict | None = None) -> dict:
    """tenant_lifecycle's one step: an erasure or an offboarding, as the params ask."""
    from airflow.sdk.exceptions import AirflowFailException

    from tenantlake import lifecycle

    params = params or {}
    runtime = _runtime()
    tenant_id = params.get("tenant_id") or ""
    if tenant_id not in runtime.registry.by_id:
        raise AirflowFailException(f"tenant_id {tenant_id!r} is not a valid tenant of the registry")
    if params.get("action") == "erase":
        if not str(params.get("consumer_id") or "").strip():
            raise AirflowFailException("erase needs consumer_id (the consumer's id in the agency's table)")
        try:
            return lifecycle.erase(runtime, tenant_id, params["consumer_id"])
        except lifecycle.ErasureRefused as e:  # nothing was done, and retrying would not change that
            raise AirflowFailException(str(e)) from None
    if params.get("action") == "offboard":
        if params.get("confirm") != tenant_id:
            raise AirflowFailException("offboard needs confirm set to the tenant id: it cannot be undone")
        return lifecycle.offboard(runtime, tenant_id)
    raise AirflowFailException(f"unknown action {params.get('action')!r}: erase or offboard")


@task(retries=0)
def check(load: dict) -> dict:
    """The post-load checks for the tenants the load touched, and the load's own failures: the
    run fails naming each (the rest is loaded and refreshed). Not retried: a check that fails
    would only fail again."""
    from tenantlake import loading

    problems = list(load["failed"]) + list(load.get("problems", []))
    problems += loading.checks(load["tenants"]) if load["tenants"] else []
    if problems:
        raise RuntimeError(f"{len(problems)} problem(s) after loading (the rest is loaded): "
                           + "; ".join(problems[:20]))
    return {"tenants": len(load["tenants"]), "loaded": load["loaded"]}
