"""The Airflow side of tenant_exports: what its tasks do. The DAG file only wires these.

Shape: each entity has SHARDS shards; a tenant's shard is a stable hash of its id. Per shard, a
`plan` task reads the registry at run time (never at parse time) and a mapped SyncTableOperator
expands over its tenants: 2,000 tenants x 8 tables is 32 expansions of ~500 each, inside Airflow's
max_map_length (1,024), and one tenant's failure fails only its own task instances.
`report` runs whatever happened (ALL_DONE), writes the run's summary beside the lake, and fails
the run, after the others have published, if any tenant table failed.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from airflow.sdk import BaseOperator, task
from airflow.triggers.base import BaseTrigger, TriggerEvent

SHARDS = 4  # per entity; raise it past ~4,000 tenants (each shard must stay under 1,024)
POOL = "tenant_exports"  # caps concurrent pulls; created by `make demo` and docker-compose


def shard_of(tenant_id: str) -> int:
    return int(hashlib.sha256(tenant_id.encode()).hexdigest(), 16) % SHARDS


def plan_shard(entity: str, shard: int, params: dict) -> list[str]:
    """The enabled tenants holding `entity` whose id hashes to `shard`, narrowed by the params."""
    from tenantlake.registry import load_registry

    wanted = set(params.get("tenants") or [])
    tables = set(params.get("tables") or [])
    if tables and entity not in tables:
        return []
    return [t.tenant_id for t in load_registry().enabled
            if entity in t.tables and shard_of(t.tenant_id) == shard and (not wanted or t.tenant_id in wanted)]


@task
def plan(entity: str, shard: int, params: dict | None = None) -> list[str]:
    """Which tenants this shard pulls in this run (read from the registry at run time)."""
    return plan_shard(entity, shard, params or {})


def _status_key(run_id: str, tenant_id: str, entity: str) -> str:
    safe = run_id.replace(":", "_").replace("+", "_")
    return f"_state/runs/{safe}/tenant_id={tenant_id}/{entity}.json"


class SyncTableOperator(BaseOperator):
    """Bring one (tenant, table) up to date: request or find its exports, wait for them without
    holding a worker slot (deferrable), ingest them in order, advance the watermark."""

    template_fields = ("tenant_id",)
    ui_color = "#d9ead3"

    def __init__(self, *, tenant_id: str, entity: str, poll_seconds: int = 60, **kwargs):
        super().__init__(**kwargs)
        self.tenant_id = tenant_id
        self.entity = entity
        self.poll_seconds = poll_seconds

    def _context(self):
        from tenantlake.registry import load_registry
        from tenantlake.settings import Settings
        from tenantlake.storage import open_store

        registry = load_registry()
        settings = Settings.from_env(registry.landing_bucket)
        return registry, registry.tenant(self.tenant_id), settings, open_store(settings.lake)

    def execute(self, context) -> dict:
        from tenantlake import sync
        from tenantlake.storage import open_store

        registry, tenant, settings, lake = self._context()
        params = context["params"]
        resnapshot = self.tenant_id in (params.get("resnapshot_tenants") or [])
        if settings.mode == "local":
            landing = open_store(settings.landing)
            result = sync.sync_landed(landing, lake, tenant, self.entity, context["run_id"], resnapshot)
            if tenant.change_source == "streams":
                result.batches += sync.sync_streams(landing, lake, tenant, self.entity, context["run_id"]).batches
            return self._done(context, lake, result.summary())
        return self._request(context, registry, tenant, settings, lake, resnapshot)

    def _request(self, context, registry, tenant, settings, lake, resnapshot: bool) -> dict:
        from tenantlake import aws, exports, sync, watermarks
        from tenantlake.registry import parse_window

        mark = watermarks.read(lake, tenant.tenant_id, self.entity)
        end = context["data_interval_end"]
        requests = exports.plan_requests(tenant.tenant_id, self.entity, mark.to_us if mark else None, end,
                                         parse_window(tenant.export_window), resnapshot)
        if not requests:
            self.log.info("%s %s: no window of 15 minutes or more since the watermark yet",
                          tenant.tenant_id, self.entity)
            return self._done(context, lake, sync.SyncResult(tenant.tenant_id, self.entity).summary())
        dynamodb = aws.tenant_session(tenant, aws.central_session(settings.aws_conn_id)).client("dynamodb")
        arns = [exports.request_once(dynamodb, tenant, r, registry.landing_bucket, registry.landing_account_id, lake)
                for r in requests]
        self.log.info("%s %s: %d export(s) requested: %s", tenant.tenant_id, self.entity, len(arns), arns)
        self.defer(trigger=ExportsCompleteTrigger(tenant.tenant_id, arns, settings.aws_conn_id, self.poll_seconds),
                   method_name="execute_complete")

    def execute_complete(self, context, event: dict) -> dict:
        """Runs when the trigger saw every export finish: ingest them in window order."""
        from tenantlake import exports, sync, watermarks
        from tenantlake.ingest import ingest_export
        from tenantlake.storage import open_store

        if event["status"] != "completed":
            raise RuntimeError(event["message"])  # AWS's FailureCode and FailureMessage
        registry, tenant, settings, lake = self._context()
        landing = open_store(settings.landing)
        result = sync.SyncResult(tenant.tenant_id, self.entity)
        for export in event["exports"]:
            key = exports.manifest_key(tenant.tenant_id, self.entity, export["arn"], export["manifest"])
            r = ingest_export(landing, key, lake, tenant_id=tenant.tenant_id, entity=self.entity,
                              tenant=tenant, run_id=context["run_id"])
            watermarks.advance(lake, tenant.tenant_id, self.entity,
                               watermarks.Watermark(r.export_time_us, r.export_id, r.kind))
            result.add(r)
        return self._done(context, lake, result.summary())

    def _done(self, context, lake, summary: dict) -> dict:
        lake.put(_status_key(context["run_id"], self.tenant_id, self.entity), orjson.dumps(summary))
        self.log.info("%s", summary)
        return summary


class ExportsCompleteTrigger(BaseTrigger):
    """Polls DescribeExport in the triggerer until every export is COMPLETED (or one FAILED)."""

    def __init__(self, tenant_id: str, export_arns: list[str], aws_conn_id: str | None, poll_seconds: int = 60):
        super().__init__()
        self.tenant_id = tenant_id
        self.export_arns = export_arns
        self.aws_conn_id = aws_conn_id
        self.poll_seconds = poll_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        # Only references cross into the triggerer: never credentials or the ExternalId.
        return ("tenantlake.tasks.ExportsCompleteTrigger",
                {"tenant_id": self.tenant_id, "export_arns": self.export_arns,
                 "aws_conn_id": self.aws_conn_id, "poll_seconds": self.poll_seconds})

    def _poll(self) -> list[dict]:
        from tenantlake import aws, exports
        from tenantlake.registry import load_registry

        tenant = load_registry().tenant(self.tenant_id)
        dynamodb = aws.tenant_session(tenant, aws.central_session(self.aws_conn_id)).client("dynamodb")
        return [exports.describe(dynamodb, arn) for arn in self.export_arns]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from tenantlake.exports import ExportFailed

        started = time.monotonic()
        while True:
            try:
                states = await asyncio.to_thread(self._poll)  # boto3 is blocking: off the event loop
            except ExportFailed as e:
                yield TriggerEvent({"status": "failed", "message": str(e)})
                return
            if all(s["status"] == "COMPLETED" for s in states):
                yield TriggerEvent({"status": "completed", "exports": states,
                                    "waited_seconds": round(time.monotonic() - started)})
                return
            await asyncio.sleep(self.poll_seconds)


@task(trigger_rule="all_done")
def report(shards: dict, params: dict | None = None, run_id: str | None = None) -> dict:
    """The run's summary per tenant, from the status each sync left; fails if any is missing."""
    from tenantlake.registry import load_registry
    from tenantlake.settings import Settings
    from tenantlake.storage import open_store

    lake = open_store(Settings.from_env(load_registry().landing_bucket).lake)
    per_tenant: dict[str, dict] = {}
    failed = []
    for key, tenant_ids in shards.items():
        entity = key.rsplit("-", 1)[0]
        for tid in tenant_ids:
            status = _status_key(run_id, tid, entity)
            t = per_tenant.setdefault(tid, {"tables": 0, "failed": [], "items": 0, "rows": 0, "quarantined": 0})
            if not lake.exists(status):
                t["failed"].append(entity)
                failed.append(f"{tid}/{entity}")
                continue
            s = orjson.loads(lake.get(status))
            t["tables"] += 1
            for k in ("items", "rows", "quarantined"):
                t[k] += s[k]
    from tenantlake.quality import summarise

    lake.put("_quality/summary.json", orjson.dumps(summarise(lake), option=orjson.OPT_INDENT_2))
    summary = {"run_id": run_id, "tenants": per_tenant, "failed": failed}
    lake.put(f"_state/runs/{run_id.replace(':', '_').replace('+', '_')}/summary.json",
             orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    if failed:
        raise RuntimeError(f"{len(failed)} tenant table(s) failed (the others published): {', '.join(failed[:20])}")
    return {"tenants": len(per_tenant), "failed": 0}
