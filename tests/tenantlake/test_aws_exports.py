"""Pulling from tenant accounts, on the export double (moto extended: trust policies with their
ExternalId condition, DynamoDB's exports; no real AWS is ever reached)."""

import asyncio
import json
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest

from tenantlake import aws, errors, exports, watermarks
from tenantlake.exports import ExportRequest, plan_requests, windows
from tenantlake.storage import LocalStore
from tenantlake_dev.aws_double import export_double, seed, tenant_client

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


# ---- on the export double: the tenant account, its table, the central bucket ---------------------

@pytest.fixture
def fleet_aws(registry):
    """agency-001's account and the central one, seeded on the double (trust policies enforced)."""
    tenant = registry.tenant("agency-001")
    with export_double() as double:
        seeded = seed(registry, tenants=[tenant], external_ids={"agency-001": SECRET})
        yield tenant, seeded.central_access(), double


def test_external_id_is_resolved_from_ssm_and_cached(fleet_aws):
    tenant, central, _ = fleet_aws
    calls = []
    central.session.events.register("before-call.ssm.GetParameter", lambda **kw: calls.append(1))
    assert aws.resolve_secret(tenant.external_id_ref, central) == SECRET
    assert aws.resolve_secret(tenant.external_id_ref, central) == SECRET
    assert len(calls) == 1  # the second read came from the TTL cache


def test_role_assumable_without_external_id_is_refused(fleet_aws):
    tenant, central, _ = fleet_aws
    tenant_client(tenant, "iam").update_assume_role_policy(RoleName="tenantlake-export", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"AWS": "arn:aws:iam::200000000000:root"}}]}))
    with pytest.raises(aws.AccessError, match="can be assumed without an ExternalId"):
        aws.tenant_access(tenant, central)


def test_wrong_external_id_is_a_hard_error_that_never_shows_the_secret(fleet_aws, caplog):
    tenant, central, _ = fleet_aws
    wrong = "ext-wrong-do-not-log"
    central.client("ssm").put_parameter(Name="/tenantlake/agency-001/external-id", Value=wrong,
                                        Type="SecureString", Overwrite=True)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(aws.AccessError, match=r"cannot assume .* with the ExternalId from ssm:/tenantlake/agency-001"
                                              r"/external-id \(AccessDenied\)") as info:
        aws.tenant_access(tenant, central)
    for secret in (SECRET, wrong):
        assert secret not in str(info.value) and secret not in caplog.text


def test_right_external_id_gives_the_tenants_account_in_its_region(fleet_aws):
    tenant, central, _ = fleet_aws
    access = aws.tenant_access(tenant, central)
    who = access.client("sts").get_caller_identity()
    assert who["Arn"] == "arn:aws:sts::211111111111:assumed-role/tenantlake-export/tenantlake-agency-001"
    assert access.region == tenant.region and access.client("dynamodb").meta.region_name == tenant.region
    assert aws.tenant_access(tenant, central) is access  # cached until near expiry
    assert aws.tenant_session(tenant, central) is access.session  # the former API, for its callers


def wait_for(access, arn: str, limit: float = 10.0) -> dict:
    """What the pipeline's trigger does: poll DescribeExport until the export is no longer running."""
    deadline = time.monotonic() + limit
    while (state := exports.describe(access, arn))["status"] == "IN_PROGRESS":
        assert time.monotonic() < deadline, f"{arn} still IN_PROGRESS after {limit}s"
        time.sleep(0.05)
    return state


def test_export_request_lands_in_the_central_bucket_and_a_retry_reuses_it(fleet_aws, tmp_path):
    """Formerly raced moto's export thread (asserted COMPLETED right after the request). The double
    answers IN_PROGRESS to the first DescribeExport every time, so only a test that waits passes."""
    tenant, central, double = fleet_aws
    access = aws.tenant_access(tenant, central)
    sent = []
    access.session.events.register("provide-client-params.dynamodb.ExportTableToPointInTime",
                                   lambda params, **kw: sent.append(dict(params)))
    ledger = LocalStore(tmp_path / "lake")
    owner = central.account_id()  # the central account holds the bucket
    double.advance(2 * H)
    req = plan_requests("agency-001", "Debt", None, double.clock.now() - H, H)[0]
    arn = exports.request_once(access, tenant, req, "tenantlake-landing", owner, ledger)
    assert exports.describe(access, arn)["status"] == "IN_PROGRESS"  # the double's first answer, every time
    again = exports.request_once(access, tenant, req, "tenantlake-landing", owner, ledger)  # describes it: not FAILED
    assert again == arn and len(sent) == 1  # the retry found the recorded export
    assert exports.request_export(access, tenant, req, "tenantlake-landing", owner) == arn  # DynamoDB's token too
    assert sent[0]["ClientToken"] == req.client_token
    assert sent[0]["S3BucketOwner"] == owner == "200000000000"
    assert sent[0]["S3Prefix"] == "tenant=agency-001/table=Debt"
    assert sent[0]["TableArn"] == tenant.table_arn("Debt")
    done = wait_for(access, arn)
    assert done["status"] == "COMPLETED"
    assert done["manifest"] == exports.manifest_key("agency-001", "Debt", arn, None)  # AWS's layout
    landed = central.client("s3").get_object(Bucket="tenantlake-landing", Key=done["manifest"])
    assert json.loads(landed["Body"].read())["exportArn"] == arn
    inc = ExportRequest("agency-001", "Debt", "INCREMENTAL_EXPORT", req.to_time, req.to_time + H)
    exports.request_once(access, tenant, inc, "tenantlake-landing", owner, ledger)
    assert sent[-1]["IncrementalExportSpecification"]["ExportViewType"] == "NEW_AND_OLD_IMAGES"


def test_table_without_pitr_is_a_clear_error_that_says_what_to_do(fleet_aws):
    tenant, central, double = fleet_aws
    tenant_client(tenant).update_continuous_backups(TableName=tenant.tables["Debt"], PointInTimeRecoverySpecification={
        "PointInTimeRecoveryEnabled": False})
    double.advance(2 * H)
    req = plan_requests("agency-001", "Debt", None, double.clock.now() - H, H)[0]
    with pytest.raises(exports.ExportFailed, match=rf"{tenant.table_arn('Debt')}: point-in-time recovery is off") as e:
        exports.request_export(aws.tenant_access(tenant, central), tenant, req, "tenantlake-landing", "200000000000")
    assert "turn it on" in str(e.value) and errors.fail_fast(e.value)  # not retried: it cannot heal alone


def test_failed_export_carries_aws_failure_code_and_message(fleet_aws):
    tenant, central, double = fleet_aws
    double.fail_exports(tenant.tables["Debt"], "S3AccessDenied", "Access Denied to bucket tenantlake-landing")
    double.advance(2 * H)
    access = aws.tenant_access(tenant, central)
    req = plan_requests("agency-001", "Debt", None, double.clock.now() - H, H)[0]
    arn = exports.request_export(access, tenant, req, "tenantlake-landing", "200000000000")
    double.finish_exports()
    with pytest.raises(exports.ExportFailed, match="S3AccessDenied: Access Denied to bucket tenantlake-landing"):
        exports.describe(access, arn)


def test_describe_takes_a_client_as_well(fleet_aws):
    tenant, central, double = fleet_aws
    double.advance(2 * H)
    access = aws.tenant_access(tenant, central)
    req = plan_requests("agency-001", "Debt", None, double.clock.now() - H, H)[0]
    arn = exports.request_export(access.client("dynamodb"), tenant, req, "tenantlake-landing", "200000000000")
    double.finish_exports()
    assert exports.describe(access.client("dynamodb"), arn)["status"] == "COMPLETED"


# ---- the trigger, polling the double (tenantlake.tasks) -------------------------------------------

def run_trigger(trigger) -> dict:
    async def first_event():
        async for event in trigger.run():
            return event.payload
    return asyncio.run(first_event())


@pytest.fixture
def trigger_world(fleet_aws, monkeypatch):
    tenant, central, double = fleet_aws
    creds = central.frozen_credentials()
    monkeypatch.setenv("AIRFLOW_CONN_TRIGGER_AWS", json.dumps({
        "conn_type": "aws", "login": creds.access_key, "password": creds.secret_key,
        "extra": {"region_name": "us-east-1"}}))
    double.advance(2 * H)
    access = aws.tenant_access(tenant, central)

    def request(token_hours: int) -> str:
        req = plan_requests("agency-001", "Debt", None, double.clock.now() - token_hours * H, H)[0]
        return exports.request_export(access, tenant, req, "tenantlake-landing", "200000000000")
    return double, request


def test_trigger_waits_until_every_export_completes(trigger_world):
    from tenantlake.tasks import ExportsCompleteTrigger

    double, request = trigger_world
    arns = [request(1)]
    double.configure(describes=3)  # three polls answer IN_PROGRESS first
    arns.append(request(2))
    payload = run_trigger(ExportsCompleteTrigger({"agency-001": arns}, "trigger_aws", poll_seconds=0.01))
    assert [s["status"] for s in payload["exports"]["agency-001"]] == ["COMPLETED", "COMPLETED"]
    assert [s["manifest"] for s in payload["exports"]["agency-001"]] == [
        exports.manifest_key("agency-001", "Debt", arn, None) for arn in arns]


def test_trigger_reports_a_failed_export_with_awss_reason(trigger_world):
    from tenantlake.tasks import ExportsCompleteTrigger

    double, request = trigger_world
    double.fail_exports(None, "S3AccessDenied", "no")
    arn = request(1)
    payload = run_trigger(ExportsCompleteTrigger({"agency-001": [arn]}, "trigger_aws", poll_seconds=0.01))
    (state,) = payload["exports"]["agency-001"]
    assert state["status"] == "FAILED" and state["message"] == f"export {arn} failed: S3AccessDenied: no"


def test_trigger_gives_up_on_a_stuck_export_naming_tenant_and_arn(trigger_world):
    from tenantlake.tasks import ExportsCompleteTrigger

    double, request = trigger_world
    double.stall_exports(None)
    arn = request(1)
    payload = run_trigger(ExportsCompleteTrigger({"agency-001": [arn]}, "trigger_aws", poll_seconds=0.01,
                                                 timeout_seconds=0.2))
    (state,) = payload["exports"]["agency-001"]
    assert state["status"] == "TIMED_OUT" and state["message"].startswith(f"agency-001: export {arn} still IN_PROGRESS")


def test_watermark_moves_only_forward_and_only_when_written(tmp_path):
    lake = LocalStore(tmp_path)
    assert watermarks.read(lake, "agency-001", "Debt") is None
    watermarks.advance(lake, "agency-001", "Debt", watermarks.Watermark(200, "e2", "INCREMENTAL_EXPORT"))
    watermarks.advance(lake, "agency-001", "Debt", watermarks.Watermark(100, "e1", "INCREMENTAL_EXPORT"))
    assert watermarks.read(lake, "agency-001", "Debt").to_us == 200
    watermarks.advance(lake, "agency-001", "Debt", watermarks.Watermark(150, "f", "FULL_EXPORT"))  # a re-snapshot
    assert watermarks.read(lake, "agency-001", "Debt").export_id == "f"


def test_freshness_is_the_stalest_table_and_never_while_one_has_none(tmp_path):
    lake = LocalStore(tmp_path)
    watermarks.advance(lake, "agency-001", "Debt", watermarks.Watermark(1793750400000000, "e", "INCREMENTAL_EXPORT"))
    assert watermarks.stalest(lake, "agency-001", ["Debt", "Plan"]) is None  # Plan never exported
    watermarks.advance(lake, "agency-001", "Plan", watermarks.Watermark(1793664000000000, "p", "INCREMENTAL_EXPORT"))
    assert watermarks.stalest(lake, "agency-001", ["Debt", "Plan"]) == 1793664000000000
    assert watermarks.when(1793664000000000) == "2026-11-03 00:00 UTC" and watermarks.when(None) == "never"


def test_an_export_that_failed_is_asked_for_again_under_a_new_token_not_reused(registry, tmp_path):
    """The ledger handed the FAILED export back on every later run (DynamoDB does the same for its
    token), so the table never got past that window (independent probe)."""
    from datetime import UTC, datetime

    class DynamoDB:  # the two calls request_once makes; the first export fails
        def __init__(self):
            self.tokens, self.failed = [], set()

        def export_table_to_point_in_time(self, **args):
            self.tokens.append(args["ClientToken"])
            arn = f"{args['TableArn']}/export/{len(self.tokens):04d}"
            if len(self.tokens) == 1:
                self.failed.add(arn)
            return {"ExportDescription": {"ExportArn": arn}}

        def describe_export(self, ExportArn):  # noqa: N803 - boto3's name
            status = "FAILED" if ExportArn in self.failed else "IN_PROGRESS"
            return {"ExportDescription": {"ExportStatus": status, "FailureCode": "UNKNOWN"}}

    tenant, ddb, ledger = registry.tenant("agency-001"), DynamoDB(), LocalStore(tmp_path / "lake")
    t = datetime(2026, 11, 1, tzinfo=UTC)
    req = ExportRequest("agency-001", "Debt", "INCREMENTAL_EXPORT", t, t + H)
    first = exports.request_once(ddb, tenant, req, "tenantlake-landing", "200000000000", ledger)
    second = exports.request_once(ddb, tenant, req, "tenantlake-landing", "200000000000", ledger)
    third = exports.request_once(ddb, tenant, req, "tenantlake-landing", "200000000000", ledger)
    assert first != second == third  # asked again once, then that export is reused while it runs
    assert ddb.tokens[0] == req.client_token and ddb.tokens[1] != req.client_token and len(ddb.tokens) == 2
