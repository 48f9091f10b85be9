"""aws mode end to end, on the export double: the real DAGs through dag.test() against three tenant
accounts and the central account played by tenantlake_dev.aws_double (moto, extended where it does
not behave like AWS), as a server, since the lake's Parquet goes through pyarrow's own S3 client.

The tenants' tables are written item by item, each change at its time; the DAG asks DynamoDB for
its exports (FULL first, INCREMENTAL windows after), defers while they run, resumes when the
trigger sees them complete, and publishes to an S3 lake whose Iceberg tables live in the Glue
catalog. One tenant takes its changes from DynamoDB Streams records landed in S3; another has one
table whose export fails and one whose export never finishes. warehouse_load then builds DuckDB
over the S3 lake, and the marts must equal the truth computed from what was written to the tables.
"""

from __future__ import annotations

import copy
import gzip
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
import yaml

from tenantlake.registry import DEFAULT_PATH, load_registry
from tenantlake.runtime import forget

pytestmark = pytest.mark.slow
EXPORTS, STREAMS, TROUBLED = "agency-001", "agency-002", "agency-003"
T0 = (datetime.now(UTC) - timedelta(hours=30)).replace(minute=0, second=0, microsecond=0)


def run(dag, at: datetime, conf=None):
    dag = copy.deepcopy(dag)  # the session's DagBag is shared: never change its DAGs in place
    for t in dag.tasks:
        t.retries = 0
    return dag.test(logical_date=at, run_conf=conf or {})


def pipes_records(tenant, entity: str, changes) -> bytes:
    """A tenant's changes of one table as EventBridge Pipes would land them: {"Records": [...]}."""
    records = []
    for n, c in enumerate(changes):
        body = {"Keys": {"id": {"S": c.key}}, "ApproximateCreationDateTime": c.ts / 1e6,
                "SequenceNumber": str(10**20 + n), "StreamViewType": "NEW_AND_OLD_IMAGES"}
        if c.new is not None:
            body["NewImage"] = c.new
        if c.old is not None:
            body["OldImage"] = c.old
        records.append({"eventID": f"{n:032x}", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
                        "eventName": "INSERT" if c.old is None else "REMOVE" if c.new is None else "MODIFY",
                        "awsRegion": tenant.region, "dynamodb": body,
                        "eventSourceARN": f"{tenant.table_arn(entity)}/stream/2026-11-01T00:00:00.000"})
    return gzip.compress(orjson.dumps({"Records": records}), mtime=0)


@pytest.fixture
def aws_world(tmp_path, monkeypatch):
    from tenantlake_dev.aws_double import DoubleServer, play_fleet
    from tenantlake_dev.simulate import FleetSpec

    doc = yaml.safe_load(DEFAULT_PATH.read_text())
    doc["tenants"] = [{**t, "export_window": "6h"} for t in doc["tenants"][:3]]
    doc["tenants"][1]["change_source"] = "streams"
    (tmp_path / "tenants.yaml").write_text(yaml.safe_dump(doc))
    registry = load_registry(tmp_path / "tenants.yaml")
    with DoubleServer() as server:
        control = server.control()
        # Each export stays IN_PROGRESS for its first DescribeExport and 0.3 s, so every task defers
        # and its trigger polls; waits are kept short (dag.test runs each trigger alone, in turn).
        control.configure(seconds=0.3, describes=1)
        played = play_fleet(registry, FleetSpec(consumers=25, days=1, warmup_days=12, window_hours=6, seed=9,
                                                full_export_at=T0), control, server.endpoint_url)
        control.real_clock()
        env = {
            "TENANTLAKE_REGISTRY": str(tmp_path / "tenants.yaml"), "TENANTLAKE_MODE": "aws",
            "TENANTLAKE_HOME": str(tmp_path / "home"), "TENANTLAKE_LAKE": f"s3://{played.seeded.lake_bucket}/lake",
            "TENANTLAKE_CATALOG": "glue", "TENANTLAKE_EXPORT_POLL_SECONDS": "0.25",
            "TENANTLAKE_EXPORT_TIMEOUT_MINUTES": "0.15", "TENANTLAKE_WAREHOUSE": "duckdb",
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(played.seeded.airflow_connection()),
        }
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("TENANTLAKE_LANDING", raising=False)
        forget()
        yield server, control, played, registry
        forget()


def land_streams(played, registry, tenant_id: str) -> int:
    """The stream tenant's changes after the full export, landed as Pipes batches, one per table."""
    s3 = played.seeded.central_access().client("s3")
    tenant, history = registry.tenant(tenant_id), played.histories[tenant_id]
    n = 0
    for entity in tenant.tables:
        changes = [c for c in history.changes if c.entity == entity]
        if changes:
            key = f"tenant={tenant_id}/table={entity}/streams/pipes/{T0:%Y/%m/%d/%H}/batch-1.json.gz"
            s3.put_object(Bucket=registry.landing_bucket, Key=key, Body=pipes_records(tenant, entity, changes))
            n += 1
    return n


def truth(played, tenant_id: str) -> dict:
    from tenantlake_dev.simulate.truth import tenant_aggregates

    return tenant_aggregates(played.histories[tenant_id].state)


def test_aws_mode_from_table_writes_to_marts(aws_world, airflow_db, dagbag):
    import duckdb

    from tenantlake.connections import runtime as airflow_runtime
    from tenantlake.tasks import run_key

    server, control, played, registry = aws_world
    exports = dagbag.dags["tenant_exports"]
    first = run(exports, T0)  # a manual run's data interval ends at its logical date: the FULL export is at T0
    assert first.state == "success"
    runtime = airflow_runtime()  # the lake in S3 through the connection, as each task reaches it
    from tenantlake import watermarks

    assert all(watermarks.read(runtime.state, t.tenant_id, e) is not None for t in registry.tenants for e in t.tables)

    # then: windows since the full export, stream records for the stream tenant, and trouble for one
    assert land_streams(played, registry, STREAMS) > 0
    troubled = registry.tenant(TROUBLED)
    control.fail_exports(troubled.tables["Debt"], "S3AccessDenied", "Access Denied to bucket tenantlake-landing")
    control.stall_exports(troubled.tables["Plan"])
    second = run(exports, T0 + timedelta(days=1))
    assert second.state == "failed"  # report fails the run, after everyone else has published
    summary = json.loads(runtime.state.get(f"{run_key(second.run_id)}/summary.json"))
    assert sorted(summary["failed"]) == [f"{TROUBLED}/Debt", f"{TROUBLED}/Plan"]
    why = {f.split(":")[0]: f for f in summary["tenants"][TROUBLED]["failed"]}
    assert "S3AccessDenied" in why["Debt"]
    assert "still IN_PROGRESS" in why["Plan"] and troubled.tables["Plan"] in why["Plan"] and TROUBLED in why["Plan"]
    assert summary["tenants"][EXPORTS]["failed"] == [] and summary["tenants"][STREAMS]["failed"] == []
    mark = watermarks.read(runtime.state, EXPORTS, "Debt")
    assert datetime.fromtimestamp(mark.to_us / 1e6, UTC) == T0 + timedelta(days=1)
    stream_log = [r for r in runtime.lake.table("ops", "batches", refresh=True).scan().to_arrow().to_pylist()
                  if r["tenant_id"] == STREAMS and r["kind"].startswith("STREAM")]
    assert stream_log  # the stream tenant's records were read in aws mode too
    control.clear_rules()

    assert run(dagbag.dags["warehouse_load"], T0 + timedelta(days=1)).state == "success"
    con = duckdb.connect(f"{runtime.settings.home}/warehouse.duckdb", read_only=True)
    try:
        got = {t: (b, e) for t, b, e in con.execute(
            "SELECT tenant_id, debt_balance, enrolled_debt FROM mart.agency_snapshot").fetchall()}
        for tenant_id in (EXPORTS, STREAMS):
            want = truth(played, tenant_id)
            assert got[tenant_id] == (Decimal(want["debt_balance"]), Decimal(want["enrolled_debt"])), tenant_id
        for view in ("lake.debt", "lake_protected.debt", "lake_protected.consumer"):
            assert con.execute(f"SELECT COUNT(*) FROM {view}").fetchone()[0] > 0, view
    finally:
        con.close()
