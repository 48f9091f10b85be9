"""Pulling from tenant accounts, on moto (no real AWS is ever reached) and botocore's Stubber
where moto does not model the behaviour (trust-policy ExternalId conditions)."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from tenantlake import aws, exports, watermarks
from tenantlake.exports import ExportRequest, plan_requests, windows
from tenantlake.storage import LocalStore

H = timedelta(hours=1)
T0 = datetime(2026, 11, 1, tzinfo=UTC)
SECRET = "ext-7f3a-do-not-log"


@pytest.fixture(autouse=True)
def clean_caches():
    aws.forget()
    yield
    aws.forget()


# ---- windows and tokens -----------------------------------------------------------------------

def test_windows_follow_dynamodb_rules():
    assert windows(T0, T0 + 3 * H, H) == [(T0, T0 + H), (T0 + H, T0 + 2 * H), (T0 + 2 * H, T0 + 3 * H)]
    # a remainder of 20 minutes is a window; one of 10 minutes waits for the next run
    assert windows(T0, T0 + H + timedelta(minutes=20), H)[-1] == (T0 + H, T0 + H + timedelta(minutes=20))
    assert windows(T0, T0 + H + timedelta(minutes=10), H) == [(T0, T0 + H)]
    assert windows(T0, T0 + timedelta(minutes=14), H) == []
    # steps outside 15 min .. 24 h are clamped
    assert windows(T0, T0 + 48 * H, 100 * H) == [(T0, T0 + 24 * H), (T0 + 24 * H, T0 + 48 * H)]
    assert windows(T0, T0 + 30 * timedelta(minutes=1), timedelta(minutes=5))[0] == (T0, T0 + timedelta(minutes=15))
    assert len(windows(T0, T0 + 1000 * H, H)) == exports.MAX_WINDOWS_PER_RUN


def test_first_run_is_full_then_incremental_from_the_watermark():
    first = plan_requests("agency-001", "Debt", None, T0, H)
    assert [(r.kind, r.to_time) for r in first] == [("FULL_EXPORT", T0)]
    later = plan_requests("agency-001", "Debt", int(T0.timestamp() * 1e6), T0 + 2 * H, H)
    assert [(r.kind, r.from_time, r.to_time) for r in later] == [
        ("INCREMENTAL_EXPORT", T0, T0 + H), ("INCREMENTAL_EXPORT", T0 + H, T0 + 2 * H)]
    forced = plan_requests("agency-001", "Debt", int(T0.timestamp() * 1e6), T0 + 2 * H, H, resnapshot=True)
    assert [r.kind for r in forced] == ["FULL_EXPORT"]


def test_client_token_is_stable_per_window_and_differs_across():
    a = ExportRequest("agency-001", "Debt", "INCREMENTAL_EXPORT", T0, T0 + H)
    assert a.client_token == ExportRequest("agency-001", "Debt", "INCREMENTAL_EXPORT", T0, T0 + H).client_token
    others = [ExportRequest("agency-002", "Debt", "INCREMENTAL_EXPORT", T0, T0 + H),
              ExportRequest("agency-001", "Plan", "INCREMENTAL_EXPORT", T0, T0 + H),
              ExportRequest("agency-001", "Debt", "INCREMENTAL_EXPORT", T0 + H, T0 + 2 * H)]
    assert len({a.client_token, *(o.client_token for o in others)}) == 4
    assert len(a.client_token) == 36


# ---- moto: the tenant account, its table, the central bucket ------------------------------------

@pytest.fixture
def fleet_aws(registry):
    with mock_aws():
        tenant = registry.tenant("agency-001")
        central = boto3.Session(region_name="us-east-1")
        central.client("ssm", region_name=tenant.region).put_parameter(
            Name="/tenantlake/agency-001/external-id", Value=SECRET, Type="SecureString")
        central.client("s3").create_bucket(Bucket="tenantlake-landing")
        # the tenant's own account: moto maps assumed-role credentials to the role's account
        creds = central.client("sts").assume_role(RoleArn=tenant.role_arn, RoleSessionName="setup")["Credentials"]
        tenant_side = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                                    aws_session_token=creds["SessionToken"], region_name=tenant.region)
        ddb = tenant_side.client("dynamodb")
        ddb.create_table(TableName=tenant.tables["Debt"], KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
        ddb.update_continuous_backups(TableName=tenant.tables["Debt"],
                                      PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
        yield tenant, central, ddb


def test_external_id_is_resolved_from_ssm_and_cached(fleet_aws, monkeypatch):
    tenant, central, _ = fleet_aws
    calls = []
    ssm = central.client("ssm", region_name=tenant.region)
    ssm.meta.events.register("before-call.ssm.GetParameter", lambda **kw: calls.append(1))
    monkeypatch.setattr(central, "client", lambda name, **kw: ssm if name == "ssm" else boto3.client(name, **kw))
    assert aws.resolve_secret(tenant.external_id_ref, central, tenant.region) == SECRET
    assert aws.resolve_secret(tenant.external_id_ref, central, tenant.region) == SECRET
    assert len(calls) == 1  # the second read came from the TTL cache


def test_role_assumable_without_external_id_is_refused(fleet_aws):
    """moto's roles accept any AssumeRole, like a trust policy without an ExternalId condition."""
    tenant, central, _ = fleet_aws
    with pytest.raises(aws.AccessError, match="can be assumed without an ExternalId"):
        aws.tenant_session(tenant, central)


def _stubbed_sts(central, tenant, second):
    sts = central.client("sts", region_name=tenant.region)
    stub = Stubber(sts)
    stub.add_client_error("assume_role", "AccessDenied", expected_params={
        "RoleArn": tenant.role_arn, "RoleSessionName": "tenantlake-agency-001", "DurationSeconds": 3600})
    second(stub)
    stub.activate()
    return sts, stub


def test_wrong_external_id_is_a_hard_error_that_never_shows_the_secret(fleet_aws, monkeypatch, caplog):
    tenant, central, _ = fleet_aws
    sts, stub = _stubbed_sts(central, tenant, lambda s: s.add_client_error("assume_role", "AccessDenied"))
    real_client = central.client
    monkeypatch.setattr(central, "client", lambda name, **kw: sts if name == "sts" else real_client(name, **kw))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(aws.AccessError, match=r"cannot assume .* with the ExternalId from ssm:/tenantlake/agency-001"
                                              r"/external-id \(AccessDenied\)") as info:
        aws.tenant_session(tenant, central)
    assert SECRET not in str(info.value) and SECRET not in caplog.text
    stub.assert_no_pending_responses()


def test_right_external_id_gives_a_tenant_session(fleet_aws, monkeypatch):
    tenant, central, _ = fleet_aws
    expires = datetime.now(UTC) + timedelta(hours=1)
    ok = {"Credentials": {"AccessKeyId": "ASIAEXAMPLEEXAMPLE", "SecretAccessKey": "s" * 40, "SessionToken": "t" * 20,
                          "Expiration": expires}}
    sts, stub = _stubbed_sts(central, tenant, lambda s: s.add_response("assume_role", ok, expected_params={
        "RoleArn": tenant.role_arn, "RoleSessionName": "tenantlake-agency-001", "DurationSeconds": 3600,
        "ExternalId": SECRET}))
    real_client = central.client
    monkeypatch.setattr(central, "client", lambda name, **kw: sts if name == "sts" else real_client(name, **kw))
    session = aws.tenant_session(tenant, central)
    assert session.get_credentials().access_key == "ASIAEXAMPLEEXAMPLE"
    assert aws.tenant_session(tenant, central) is session  # cached until near expiry
    stub.assert_no_pending_responses()


def test_export_request_lands_in_the_central_bucket_and_a_retry_reuses_it(fleet_aws, tmp_path):
    tenant, _, ddb = fleet_aws
    sent = []
    ddb.meta.events.register("provide-client-params.dynamodb.ExportTableToPointInTime",
                             lambda params, **kw: sent.append(dict(params)))
    ledger = LocalStore(tmp_path / "lake")
    owner = boto3.client("sts").get_caller_identity()["Account"]  # the central account holds the bucket
    req = plan_requests("agency-001", "Debt", None, datetime.now(UTC) - H, H)[0]
    arn = exports.request_once(ddb, tenant, req, "tenantlake-landing", owner, ledger)
    again = exports.request_once(ddb, tenant, req, "tenantlake-landing", owner, ledger)
    assert again == arn and len(sent) == 1  # the retry found the recorded export
    assert sent[0]["ClientToken"] == req.client_token
    assert sent[0]["S3BucketOwner"] == owner
    assert sent[0]["S3Prefix"] == "tenant=agency-001/table=Debt"
    assert sent[0]["TableArn"] == tenant.table_arn("Debt")
    assert exports.describe(ddb, arn)["status"] == "COMPLETED"
    inc = ExportRequest("agency-001", "Debt", "INCREMENTAL_EXPORT", datetime.now(UTC) - 2 * H, datetime.now(UTC) - H)
    exports.request_once(ddb, tenant, inc, "tenantlake-landing", owner, ledger)
    assert sent[-1]["IncrementalExportSpecification"]["ExportViewType"] == "NEW_AND_OLD_IMAGES"


def test_table_without_pitr_is_a_clear_aws_error(fleet_aws, tmp_path):
    tenant, _, ddb = fleet_aws
    ddb.update_continuous_backups(TableName=tenant.tables["Debt"],
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False})
    req = plan_requests("agency-001", "Debt", None, datetime.now(UTC) - H, H)[0]
    with pytest.raises(Exception, match="PointInTimeRecoveryUnavailable"):
        exports.request_export(ddb, tenant, req, "tenantlake-landing", "200000000000")


def test_failed_export_carries_aws_failure_code_and_message():
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    stub = Stubber(dynamodb)
    stub.add_response("describe_export", {"ExportDescription": {
        "ExportArn": "arn:aws:dynamodb:us-east-1:211111111111:table/Debt/export/01-x", "ExportStatus": "FAILED",
        "FailureCode": "S3AccessDenied", "FailureMessage": "Access Denied to bucket tenantlake-landing"}})
    with stub, pytest.raises(exports.ExportFailed, match="S3AccessDenied: Access Denied to bucket tenantlake-landing"):
        exports.describe(dynamodb, "arn:aws:dynamodb:us-east-1:211111111111:table/Debt/export/01-x")


def test_trigger_waits_until_every_export_completes(monkeypatch):
    from tenantlake.tasks import ExportsCompleteTrigger

    states = iter([[{"arn": "a", "status": "IN_PROGRESS", "manifest": None, "items": None}],
                   [{"arn": "a", "status": "COMPLETED", "manifest": "m.json", "items": 3}]])
    trigger = ExportsCompleteTrigger("agency-001", ["a"], None, poll_seconds=0)
    monkeypatch.setattr(trigger, "_poll", lambda: next(states))
    assert trigger.serialize()[1] == {"tenant_id": "agency-001", "export_arns": ["a"], "aws_conn_id": None,
                                      "poll_seconds": 0}

    async def first_event():
        async for event in trigger.run():
            return event.payload
    payload = asyncio.run(first_event())
    assert payload["status"] == "completed" and payload["exports"][0]["manifest"] == "m.json"


def test_trigger_reports_a_failed_export(monkeypatch):
    from tenantlake.tasks import ExportsCompleteTrigger

    def boom():
        raise exports.ExportFailed("export a failed: S3AccessDenied: no")
    trigger = ExportsCompleteTrigger("agency-001", ["a"], None, poll_seconds=0)
    monkeypatch.setattr(trigger, "_poll", boom)

    async def first_event():
        async for event in trigger.run():
            return event.payload
    assert asyncio.run(first_event()) == {"status": "failed", "message": "export a failed: S3AccessDenied: no"}


def test_watermark_moves_only_forward_and_only_when_written(tmp_path):
    lake = LocalStore(tmp_path)
    assert watermarks.read(lake, "agency-001", "Debt") is None
    watermarks.advance(lake, "agency-001", "Debt", watermarks.Watermark(200, "e2", "INCREMENTAL_EXPORT"))
    watermarks.advance(lake, "agency-001", "Debt", watermarks.Watermark(100, "e1", "INCREMENTAL_EXPORT"))
    assert watermarks.read(lake, "agency-001", "Debt").to_us == 200
    watermarks.advance(lake, "agency-001", "Debt", watermarks.Watermark(150, "f", "FULL_EXPORT"))  # a re-snapshot
    assert watermarks.read(lake, "agency-001", "Debt").export_id == "f"


def test_execute_complete_ingests_the_exports_and_moves_the_watermark(fleet, tmp_path, monkeypatch):
    """What the operator does once the trigger says every export completed (manifest keys as
    DescribeExport gives them), on files the simulator landed."""
    import json

    from tenantlake.tasks import SyncTableOperator

    out, _ = fleet
    landing = out / "landing"
    summaries = sorted(landing.glob("tenant=agency-001/table=Debt/AWSDynamoDB/*/manifest-summary.json"),
                       key=lambda p: json.loads(p.read_text()).get("exportFromTime", ""))
    monkeypatch.setenv("TENANTLAKE_LANDING", str(landing))
    monkeypatch.setenv("TENANTLAKE_LAKE", str(tmp_path / "lake"))
    event = {"status": "completed", "exports": [
        {"arn": json.loads(p.read_text())["exportArn"], "status": "COMPLETED", "manifest": str(p.relative_to(landing))}
        for p in summaries[:2]]}
    op = SyncTableOperator(task_id="t", tenant_id="agency-001", entity="Debt")
    summary = op.execute_complete({"run_id": "r1"}, event)
    second = json.loads(summaries[1].read_text())
    expected = sum(json.loads(p.read_text())["itemCount"] for p in summaries[:2])
    assert (summary["batches"], summary["items"]) == (2, expected)
    mark = watermarks.read(LocalStore(tmp_path / "lake"), "agency-001", "Debt")
    assert mark.to_us == int(datetime.fromisoformat(second["exportToTime"]).timestamp() * 1_000_000)
    with pytest.raises(RuntimeError, match="S3AccessDenied"):
        op.execute_complete({"run_id": "r2"}, {"status": "failed", "message": "export x failed: S3AccessDenied: no"})


def test_freshness_is_the_stalest_table_and_never_while_one_has_none(tmp_path):
    lake = LocalStore(tmp_path)
    watermarks.advance(lake, "agency-001", "Debt", watermarks.Watermark(1793750400000000, "e", "INCREMENTAL_EXPORT"))
    assert watermarks.stalest(lake, "agency-001", ["Debt", "Plan"]) is None  # Plan never exported
    watermarks.advance(lake, "agency-001", "Plan", watermarks.Watermark(1793664000000000, "p", "INCREMENTAL_EXPORT"))
    assert watermarks.stalest(lake, "agency-001", ["Debt", "Plan"]) == 1793664000000000
    assert watermarks.when(1793664000000000) == "2026-11-03 00:00 UTC" and watermarks.when(None) == "never"
