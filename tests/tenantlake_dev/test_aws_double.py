"""The export double behaves like AWS where stock moto 5.2.5 does not (each gap is shown on stock
moto first, where it matters), in-process and as a server. Expected values are computed here by
hand from what the test wrote, never from the double's own code."""

import base64
import gzip
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tenantlake import aws
from tenantlake.formats.manifest import read_export, stream_slices
from tenantlake.storage import S3Store
from tenantlake_dev.aws_double import (
    STATE,
    Clock,
    DoubleServer,
    RemoteDouble,
    export_double,
    seed,
    tenant_client,
)
from tenantlake_dev.aws_double.policy import Caller, allows

T0 = datetime(2026, 11, 1, tzinfo=UTC)
H, M = timedelta(hours=1), timedelta(minutes=1)
ROLE = "arn:aws:iam::211111111111:role/tenantlake-export"


def us(when: datetime) -> int:
    return int(when.timestamp() * 1_000_000)


def item(key: str, **attrs) -> dict:
    return {"id": {"S": key}, **{k: {"N": str(v)} for k, v in attrs.items()}}


class Fleet:
    """One tenant (agency-001) on the double, its Debt table written by the test at known times."""

    def __init__(self, double, registry):
        self.double, self.registry = double, registry
        self.tenant = registry.tenant("agency-001")
        self.table = self.tenant.tables["Debt"]
        self.table_arn = self.tenant.table_arn("Debt")
        double.set_clock(T0)
        self.seeded = seed(registry, tenants=[self.tenant])
        self.central = self.seeded.central_access()
        self.access = aws.tenant_access(self.tenant, self.central)
        self.ddb = self.access.client("dynamodb")  # the tenant role's session, as the pipeline has it
        self.writer = tenant_client(self.tenant)  # the agency's app, writing its table
        self.s3 = self.central.client("s3")

    def at(self, when: datetime) -> None:
        self.double.set_clock(when)

    def export(self, **kw):
        args = {"TableArn": self.table_arn, "S3Bucket": "tenantlake-landing", "S3BucketOwner": "200000000000",
                "S3Prefix": "tenant=agency-001/table=Debt", **kw}
        return self.ddb.export_table_to_point_in_time(**args)["ExportDescription"]

    def incremental(self, frm: datetime, to: datetime | None, view: str = "NEW_AND_OLD_IMAGES", **kw):
        spec = {"ExportFromTime": frm, "ExportViewType": view, **({"ExportToTime": to} if to else {})}
        return self.export(ExportType="INCREMENTAL_EXPORT", IncrementalExportSpecification=spec, **kw)

    def describe(self, arn: str) -> dict:
        return self.ddb.describe_export(ExportArn=arn)["ExportDescription"]

    def finished(self, arn: str, limit: float = 10.0) -> dict:
        """Poll DescribeExport until the export leaves IN_PROGRESS (as the pipeline's trigger does)."""
        deadline = time.monotonic() + limit
        while (d := self.describe(arn))["ExportStatus"] == "IN_PROGRESS":
            assert time.monotonic() < deadline, f"{arn} still IN_PROGRESS after {limit}s"
            time.sleep(0.05)
        return d

    def get(self, key: str) -> bytes:
        return self.s3.get_object(Bucket="tenantlake-landing", Key=key)["Body"].read()

    def lines(self, described: dict) -> list[dict]:
        summary = json.loads(self.get(described["ExportManifest"]))
        files = [json.loads(x) for x in self.get(summary["manifestFilesS3Key"]).splitlines()]
        return [json.loads(x) for f in files for x in gzip.decompress(self.get(f["dataFileS3Key"])).splitlines()]


@pytest.fixture
def double():
    with export_double(seconds=0, describes=0) as d:
        aws.forget()
        yield d
    aws.forget()


@pytest.fixture
def fleet(double, registry):
    return Fleet(double, registry)


def write_history(f: Fleet) -> None:
    """d-1 put at T0+1h, updated at +2h; d-2 put at +1h30, deleted at +2h30; d-3 put at +3h."""
    f.at(T0 + H)
    f.writer.put_item(TableName=f.table, Item=item("d-1", balance=100))
    f.at(T0 + 90 * M)
    f.writer.batch_write_item(RequestItems={f.table: [{"PutRequest": {"Item": item("d-2", balance=50)}}]})
    f.at(T0 + 2 * H)
    f.writer.update_item(TableName=f.table, Key={"id": {"S": "d-1"}}, UpdateExpression="SET balance = :b",
                         ExpressionAttributeValues={":b": {"N": "80"}})
    f.at(T0 + 150 * M)
    f.writer.delete_item(TableName=f.table, Key={"id": {"S": "d-2"}})
    f.at(T0 + 3 * H)
    f.writer.put_item(TableName=f.table, Item=item("d-3", balance=7))
    f.at(T0 + 5 * H)


# ---- AssumeRole and the trust policy ---------------------------------------------------------------

def test_stock_moto_assumes_any_role_even_one_that_does_not_exist():
    with mock_aws():
        sts = boto3.client("sts", region_name="us-east-1")
        assert sts.assume_role(RoleArn="arn:aws:iam::299999999999:role/nobody", RoleSessionName="ss")["Credentials"]


@pytest.mark.parametrize("case", ["no external id", "wrong external id", "no such role", "untrusted caller"])
def test_assume_role_is_refused_unless_the_trust_policy_lets_the_caller_in(fleet, case):
    role, kw = ROLE, {"ExternalId": fleet.seeded.external_ids["agency-001"]}
    sts = fleet.central.client("sts")
    if case == "no external id":
        kw = {}
    elif case == "wrong external id":
        kw = {"ExternalId": "not-it"}
    elif case == "no such role":
        role = "arn:aws:iam::211111111111:role/other"
    else:
        sts = boto3.client("sts", region_name="us-east-1")  # the environment's keys: another account
    with pytest.raises(ClientError) as refused:
        sts.assume_role(RoleArn=role, RoleSessionName="ss", **kw)
    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDenied"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Message"].endswith(f"is not authorized to perform: sts:AssumeRole on resource: {role}")


def test_the_right_external_id_from_the_central_account_gets_the_tenants_role(fleet):
    sts = fleet.central.client("sts")
    creds = sts.assume_role(RoleArn=ROLE, RoleSessionName="ss",
                            ExternalId=fleet.seeded.external_ids["agency-001"])["Credentials"]
    who = boto3.client("sts", region_name="us-east-1", aws_access_key_id=creds["AccessKeyId"],
                       aws_secret_access_key=creds["SecretAccessKey"],
                       aws_session_token=creds["SessionToken"]).get_caller_identity()
    assert who["Arn"] == "arn:aws:sts::211111111111:assumed-role/tenantlake-export/ss"


def test_a_role_without_the_external_id_condition_is_caught_by_tenant_access(fleet):
    """The pipeline's confused-deputy guard, now exercised for real: trust without a condition."""
    iam = tenant_client(fleet.tenant, "iam")
    iam.update_assume_role_policy(RoleName="tenantlake-export", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"AWS": "arn:aws:iam::200000000000:root"}}]}))
    aws.forget()
    with pytest.raises(aws.AccessError, match="can be assumed without an ExternalId"):
        aws.tenant_access(fleet.tenant, fleet.central)


@pytest.mark.parametrize(("principal", "caller", "ok"), [
    ("arn:aws:iam::200000000000:root", Caller("arn:aws:iam::200000000000:user/u", "200000000000"), True),
    ("200000000000", Caller("arn:aws:sts::200000000000:assumed-role/r/s", "200000000000"), True),
    ("arn:aws:iam::200000000000:role/path/r", Caller("arn:aws:sts::200000000000:assumed-role/r/s", "200000000000"),
     True),
    ("arn:aws:iam::200000000000:role/r", Caller("arn:aws:sts::200000000000:assumed-role/other/s", "200000000000"),
     False),
    ("arn:aws:iam::200000000000:root", Caller("arn:aws:iam::299999999999:user/u", "299999999999"), False),
])
def test_principals(principal, caller, ok):
    policy = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]}
    assert allows(policy, caller, "sts:AssumeRole") is ok


def test_an_explicit_deny_wins_and_unknown_conditions_fail_closed():
    who = Caller("arn:aws:iam::200000000000:user/u", "200000000000")
    allow = {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}
    deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/x/*"}
    assert allows({"Statement": [allow, deny]}, who, "s3:PutObject", "arn:aws:s3:::b/y/1")
    assert not allows({"Statement": [allow, deny]}, who, "s3:PutObject", "arn:aws:s3:::b/x/1")
    odd = {**allow, "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}}
    assert not allows({"Statement": [odd]}, who, "s3:GetObject", "arn:aws:s3:::b/1")
    assert not allows({"Statement": [allow, {**deny, "Condition": odd["Condition"]}]}, who, "s3:PutObject",
                      "arn:aws:s3:::b/x/1")


# ---- point-in-time and incremental exports ---------------------------------------------------------

def test_stock_moto_exports_the_table_as_it_is_now_with_no_manifests():
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="stock-bucket")
        arn = ddb.create_table(TableName="t", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                               AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                               BillingMode="PAY_PER_REQUEST")["TableDescription"]["TableArn"]
        ddb.update_continuous_backups(TableName="t", PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": True})
        one = ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket="stock-bucket", S3Prefix="p", ClientToken="x")
        two = ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket="stock-bucket", S3Prefix="p", ClientToken="x")
        export_arn = one["ExportDescription"]["ExportArn"]
        assert export_arn != two["ExportDescription"]["ExportArn"]  # the same token made a second export
        assert export_arn.startswith(f"arn:aws:dynamodb:us-east-1:123456789012:table/{arn}/")  # nested ARN
        for _ in range(100):  # moto exports in a thread: wait for it
            if ddb.describe_export(ExportArn=export_arn)["ExportDescription"]["ExportStatus"] != "IN_PROGRESS":
                break
            time.sleep(0.02)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="stock-bucket")["Contents"]]
        assert not any(k.endswith(("manifest-summary.json", "_started")) for k in keys)
        assert "ExportManifest" not in ddb.describe_export(ExportArn=export_arn)["ExportDescription"]


@pytest.mark.parametrize(("at", "expected"), [
    (T0 + 30 * M, []),
    (T0 + 100 * M, [item("d-1", balance=100), item("d-2", balance=50)]),
    (T0 + 2 * H, [item("d-1", balance=100), item("d-2", balance=50)]),  # the write at 2h is not before 2h
    (T0 + 160 * M, [item("d-1", balance=80)]),
    (T0 + 4 * H, [item("d-1", balance=80), item("d-3", balance=7)]),
])
def test_a_full_export_is_the_table_as_it_was_at_export_time(fleet, at, expected):
    write_history(fleet)
    described = fleet.finished(fleet.export(ExportTime=at)["ExportArn"])
    assert described["ExportTime"] == at and described["ExportType"] == "FULL_EXPORT"
    got = sorted((line["Item"] for line in fleet.lines(described)), key=lambda i: i["id"]["S"])
    assert got == expected
    assert described["ItemCount"] == len(expected)


def by_key(lines: list[dict]) -> dict[str, dict]:
    return {line["Keys"]["id"]["S"]: line for line in lines}


def meta(when: datetime) -> dict:
    return {"WriteTimestampMicros": {"N": str(us(when))}}


def test_an_incremental_export_has_each_key_once_in_its_final_state(fleet):
    write_history(fleet)
    f = fleet
    f.writer.put_item(TableName=f.table, Item=item("d-4", balance=1))  # at +5h, created ...
    f.at(T0 + 5 * H + 5 * M)
    f.writer.delete_item(TableName=f.table, Key={"id": {"S": "d-4"}})  # ... and gone in the same window
    f.at(T0 + 7 * H)
    described = f.finished(f.incremental(T0 + 90 * M, T0 + 6 * H)["ExportArn"])
    # d-1: put at 1h (before the window), updated at 2h -> its image at 1h30 and its last one;
    # d-2: put at 1h30 (the inclusive start) and deleted at 2h30 -> nothing; d-3: an insert;
    # d-4: created and deleted inside the window -> nothing
    assert by_key(f.lines(described)) == {
        "d-1": {"Metadata": meta(T0 + 2 * H), "Keys": {"id": {"S": "d-1"}}, "OldImage": item("d-1", balance=100),
                "NewImage": item("d-1", balance=80)},
        "d-3": {"Metadata": meta(T0 + 3 * H), "Keys": {"id": {"S": "d-3"}}, "NewImage": item("d-3", balance=7)},
    }
    assert described["IncrementalExportSpecification"] == {
        "ExportFromTime": T0 + 90 * M, "ExportToTime": T0 + 6 * H, "ExportViewType": "NEW_AND_OLD_IMAGES"}
    assert described["ItemCount"] == 2 and "ExportTime" not in described
    summary = json.loads(f.get(described["ExportManifest"]))
    assert (summary["exportType"], summary["outputView"], summary["version"]) == (
        "INCREMENTAL_EXPORT", "NEW_AND_OLD_IMAGES", "2023-08-01")
    assert (summary["exportFromTime"], summary["exportToTime"]) == ("2026-11-01T01:30:00.000Z",
                                                                    "2026-11-01T06:00:00.000Z")


@pytest.mark.parametrize("view", ["NEW_AND_OLD_IMAGES", "NEW_IMAGE"])
def test_incremental_lines_follow_the_view_type(fleet, view):
    """Window [2h, 3h): d-1 updated (its old image from before), d-2 deleted, nothing inserted;
    [3h, 4h): d-3 inserted."""
    write_history(fleet)
    both = view == "NEW_AND_OLD_IMAGES"
    update_delete = by_key(fleet.lines(fleet.finished(fleet.incremental(T0 + 2 * H, T0 + 3 * H, view)["ExportArn"])))
    insert = by_key(fleet.lines(fleet.finished(fleet.incremental(T0 + 3 * H, T0 + 4 * H, view)["ExportArn"])))
    keys = {k: {"id": {"S": k}} for k in ("d-1", "d-2", "d-3")}
    assert update_delete == {
        "d-1": {"Metadata": meta(T0 + 2 * H), "Keys": keys["d-1"], "NewImage": item("d-1", balance=80),
                **({"OldImage": item("d-1", balance=100)} if both else {})},
        "d-2": {"Metadata": meta(T0 + 150 * M), "Keys": keys["d-2"],
                **({"OldImage": item("d-2", balance=50)} if both else {})},
    }
    assert insert == {"d-3": {"Metadata": meta(T0 + 3 * H), "Keys": keys["d-3"], "NewImage": item("d-3", balance=7)}}


def test_full_then_incremental_windows_add_up_to_a_later_full(fleet):
    write_history(fleet)
    state = {i["id"]["S"]: i for i in (x["Item"] for x in fleet.lines(fleet.finished(
        fleet.export(ExportTime=T0 + 100 * M)["ExportArn"])))}
    for a, b in ((T0 + 100 * M, T0 + 160 * M), (T0 + 160 * M, T0 + 4 * H)):
        for line in fleet.lines(fleet.finished(fleet.incremental(a, b)["ExportArn"])):
            key = line["Keys"]["id"]["S"]
            if "NewImage" in line:
                state[key] = line["NewImage"]
            else:
                state.pop(key, None)
    later = fleet.lines(fleet.finished(fleet.export(ExportTime=T0 + 4 * H)["ExportArn"]))
    assert state == {x["Item"]["id"]["S"]: x["Item"] for x in later}


NOW = T0 + 30 * H  # the clock during these requests; PITR was turned on at T0


@pytest.mark.parametrize(("request_kw", "code"), [
    ({"ExportTime": NOW + M}, "InvalidExportTimeException"),  # in the future
    ({"ExportTime": T0 - H}, "InvalidExportTimeException"),  # before PITR was turned on
    ({"incremental": (T0 + H, T0 + H + 14 * M)}, "ValidationException"),  # under 15 minutes
    ({"incremental": (T0 + H, T0 + 25 * H + M)}, "ValidationException"),  # over 24 hours
    ({"incremental": (T0 + 2 * H, T0 + H)}, "ValidationException"),  # backwards
    ({"incremental": (T0 - H, T0 + H)}, "InvalidExportTimeException"),  # starts before PITR
    ({"incremental": (NOW - H, NOW + H)}, "InvalidExportTimeException"),  # ends in the future
    ({"ExportType": "INCREMENTAL_EXPORT"}, "ValidationException"),  # no specification
    ({"ExportTime": T0 + H, "incremental": (T0 + H, T0 + 2 * H)}, "ValidationException"),  # both
    ({"ExportFormat": "CSV"}, "ValidationException"),
    ({"TableArn": "arn:aws:dynamodb:us-east-1:211111111111:table/Nope"}, "TableNotFoundException"),
    ({"TableArn": "arn:aws:dynamodb:us-east-1:299999999999:table/Debt-k3j2h5-prod"}, "TableNotFoundException"),
])
def test_requests_dynamodb_refuses_are_refused_with_its_codes(fleet, request_kw, code):
    fleet.at(NOW)
    kw = dict(request_kw)
    spec = kw.pop("incremental", None)
    with pytest.raises(ClientError) as refused:
        if spec:
            fleet.incremental(*spec, **kw)
        else:
            fleet.export(**kw)
    assert refused.value.response["Error"]["Code"] == code


def test_the_edges_dynamodb_allows_are_allowed(fleet):
    fleet.at(NOW)
    assert fleet.incremental(T0, T0 + 15 * M)["ExportStatus"] == "IN_PROGRESS"  # exactly 15 minutes
    assert fleet.incremental(T0 + H, T0 + 25 * H)["ExportStatus"] == "IN_PROGRESS"  # exactly 24 hours
    assert fleet.incremental(NOW - H, None)["IncrementalExportSpecification"]["ExportToTime"] == NOW  # up to now
    assert fleet.export(ExportTime=NOW)["ExportTime"] == NOW
    assert fleet.export()["ExportTime"] == NOW  # no ExportTime: now


def test_no_export_without_point_in_time_recovery(fleet):
    fleet.writer.update_continuous_backups(TableName=fleet.table, PointInTimeRecoverySpecification={
        "PointInTimeRecoveryEnabled": False})
    with pytest.raises(ClientError, match="PointInTimeRecoveryUnavailableException"):
        fleet.export()


def test_pitr_turned_on_again_starts_a_new_window(fleet):
    fleet.at(T0 + 2 * H)
    for on in (False, True):
        fleet.writer.update_continuous_backups(TableName=fleet.table, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": on})
    fleet.at(T0 + 3 * H)
    with pytest.raises(ClientError, match="InvalidExportTimeException"):
        fleet.export(ExportTime=T0 + H)
    pitr = fleet.writer.describe_continuous_backups(TableName=fleet.table)["ContinuousBackupsDescription"][
        "PointInTimeRecoveryDescription"]
    assert (pitr["EarliestRestorableDateTime"], pitr["LatestRestorableDateTime"]) == (T0 + 2 * H, T0 + 3 * H)


def test_client_token_same_request_same_export_other_request_conflict(fleet):
    fleet.at(T0 + 5 * H)
    first = fleet.export(ExportTime=T0 + H, ClientToken="tok")
    again = fleet.export(ExportTime=T0 + H, ClientToken="tok")
    assert again["ExportArn"] == first["ExportArn"]
    assert len(fleet.ddb.list_exports(TableArn=fleet.table_arn)["ExportSummaries"]) == 1
    with pytest.raises(ClientError) as conflict:
        fleet.export(ExportTime=T0 + 2 * H, ClientToken="tok")
    assert conflict.value.response["Error"]["Code"] == "ExportConflictException"
    fleet.finished(first["ExportArn"])
    fleet.double.advance(timedelta(hours=8, seconds=1))  # the token lasts 8 hours after completion
    assert fleet.export(ExportTime=T0 + H, ClientToken="tok")["ExportArn"] != first["ExportArn"]


def test_an_export_stays_in_progress_for_the_configured_while(fleet):
    fleet.double.configure(seconds=0.3, describes=2)
    fleet.at(T0 + H)
    arn = fleet.export()["ExportArn"]
    started = time.monotonic()
    states = [fleet.describe(arn)["ExportStatus"] for _ in range(2)]
    assert states == ["IN_PROGRESS", "IN_PROGRESS"]
    fleet.finished(arn)
    assert time.monotonic() - started >= 0.3
    assert fleet.double.finish_exports() == 0  # nothing left


def test_exports_can_be_made_to_fail_or_stall(fleet):
    fleet.at(T0 + H)
    fleet.double.fail_exports(fleet.table, "S3AccessDenied", "Access Denied to bucket tenantlake-landing")
    failed = fleet.finished(fleet.export()["ExportArn"])
    assert (failed["ExportStatus"], failed["FailureCode"], failed["FailureMessage"]) == (
        "FAILED", "S3AccessDenied", "Access Denied to bucket tenantlake-landing")
    assert "ExportManifest" not in failed
    fleet.double.clear_rules()
    fleet.double.stall_exports(fleet.table_arn)
    stuck = fleet.export(ClientToken="stuck")["ExportArn"]
    fleet.double.finish_exports()
    assert fleet.describe(stuck)["ExportStatus"] == "IN_PROGRESS"


@pytest.mark.parametrize(("bucket", "owner", "prefix", "code"), [
    ("no-such-bucket", "200000000000", "tenant=agency-001/table=Debt", "S3NoSuchBucket"),
    ("tenantlake-landing", "200000000000", "tenant=agency-002/table=Debt", "S3AccessDenied"),  # not its prefix
    ("tenantlake-landing", "299999999999", "tenant=agency-001/table=Debt", "S3AccessDenied"),  # wrong owner
    ("tenantlake-landing", None, "tenant=agency-001/table=Debt", "S3AccessDenied"),  # cross-account, no owner
])
def test_what_s3_would_refuse_fails_the_export(fleet, bucket, owner, prefix, code):
    fleet.at(T0 + H)
    kw = {"S3Bucket": bucket, "S3Prefix": prefix}
    args = {"TableArn": fleet.table_arn, **kw, **({"S3BucketOwner": owner} if owner else {})}
    arn = fleet.ddb.export_table_to_point_in_time(**args)["ExportDescription"]["ExportArn"]
    described = fleet.finished(arn)
    assert (described["ExportStatus"], described["FailureCode"]) == ("FAILED", code)
    listed = fleet.s3.list_objects_v2(Bucket="tenantlake-landing", Prefix="tenant=agency-002/")
    assert listed["KeyCount"] == 0  # nothing was written where it may not be


def test_the_layout_is_awss_and_the_pipelines_reader_verifies_it(fleet):
    fleet.double.configure(data_files=3)
    write_history(fleet)
    arn = fleet.export(ExportTime=T0 + 4 * H)["ExportArn"]
    export_id = arn.rsplit("/", 1)[1]
    assert arn == f"{fleet.table_arn}/export/{export_id}" and re.fullmatch(r"\d{14}-[0-9a-f]{8}", export_id)
    described = fleet.finished(arn)
    base = f"tenant=agency-001/table=Debt/AWSDynamoDB/{export_id}"
    keys = sorted(o["Key"] for o in fleet.s3.list_objects_v2(Bucket="tenantlake-landing")["Contents"])
    data = [k for k in keys if k.startswith(f"{base}/data/")]
    assert keys == sorted([f"{base}/_started", f"{base}/manifest-files.checksum", f"{base}/manifest-files.json",
                           f"{base}/manifest-summary.checksum", f"{base}/manifest-summary.json", *data])
    assert len(data) == 3 and all(k.endswith(".json.gz") for k in data)
    assert fleet.get(f"{base}/_started") == b""
    summary_bytes = fleet.get(f"{base}/manifest-summary.json")
    assert fleet.get(f"{base}/manifest-summary.checksum").decode() == hashlib.md5(summary_bytes).hexdigest()
    files_bytes = fleet.get(f"{base}/manifest-files.json")
    assert fleet.get(f"{base}/manifest-files.checksum").decode() == hashlib.md5(files_bytes).hexdigest()
    entries = [json.loads(x) for x in files_bytes.splitlines()]
    for e in entries:
        body = fleet.get(e["dataFileS3Key"])
        assert e["md5Checksum"] == base64.b64encode(hashlib.md5(body).digest()).decode()
        assert e["itemCount"] == len(gzip.decompress(body).splitlines())
    summary = json.loads(summary_bytes)
    assert summary["exportArn"] == arn and summary["tableArn"] == fleet.table_arn
    assert (summary["itemCount"], sum(e["itemCount"] for e in entries)) == (2, 2)
    assert summary["exportTime"] == "2026-11-01T04:00:00.000Z" and summary["version"] == "2020-06-30"
    assert (summary["s3Bucket"], summary["s3Prefix"]) == ("tenantlake-landing", "tenant=agency-001/table=Debt")
    assert described["ExportManifest"] == f"{base}/manifest-summary.json"
    assert (described["ItemCount"], described["S3BucketOwner"]) == (2, "200000000000")
    assert described["BilledSizeBytes"] == summary["billedSizeBytes"] > 0
    # the pipeline's own reader checks every MD5 and count on the way
    landing = S3Store("tenantlake-landing", client=fleet.s3)
    export = read_export(landing, described["ExportManifest"])
    assert (export.export_id, export.item_count, len(export.files)) == (export_id, 2, 3)
    assert sum(s.text.count(b"\n") for f in export.files for s in stream_slices(landing, f)) == 2


def test_an_ion_export_writes_ion(fleet):
    fleet.at(T0 + H)
    fleet.writer.put_item(TableName=fleet.table, Item={"id": {"S": "d-1"}, "balance": {"N": "1.5"}})
    fleet.at(T0 + 2 * H)
    described = fleet.finished(fleet.export(ExportFormat="ION")["ExportArn"])
    summary = json.loads(fleet.get(described["ExportManifest"]))
    (entry,) = [json.loads(x) for x in fleet.get(summary["manifestFilesS3Key"]).splitlines() if
                json.loads(x)["itemCount"]]
    assert entry["dataFileS3Key"].endswith(".ion.gz") and summary["outputFormat"] == "ION"
    assert gzip.decompress(fleet.get(entry["dataFileS3Key"])) == b'$ion_1_0 {Item:{"id":"d-1","balance":1.5}}\n'


def test_list_exports_pages_and_describe_of_an_unknown_export_is_not_found(fleet):
    fleet.at(T0 + H)
    arns = [fleet.export(ClientToken=f"t{i}")["ExportArn"] for i in range(3)]
    first = fleet.ddb.list_exports(TableArn=fleet.table_arn, MaxResults=2)
    second = fleet.ddb.list_exports(TableArn=fleet.table_arn, MaxResults=2, NextToken=first["NextToken"])
    assert [e["ExportArn"] for e in first["ExportSummaries"] + second["ExportSummaries"]] == arns
    assert "NextToken" not in second
    assert {e["ExportType"] for e in first["ExportSummaries"]} == {"FULL_EXPORT"}
    with pytest.raises(ClientError) as missing:
        fleet.describe(f"{fleet.table_arn}/export/01793491200000-00000000")
    assert missing.value.response["Error"]["Code"] == "ExportNotFoundException"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400  # stock moto: 500


# ---- the clock -----------------------------------------------------------------------------------

def test_the_clock_is_fixed_when_set_and_never_goes_back_behind_a_write():
    clock = Clock()
    clock.set(T0)
    assert clock.now() == T0 and clock.advance(90) == T0 + timedelta(seconds=90)
    clock.set(T0)  # nothing was stamped: allowed
    clock.stamp_us()
    with pytest.raises(ValueError, match="cannot go back"):
        clock.set(T0 - timedelta(seconds=1))
    clock.real()
    assert clock.now() > T0


# ---- seeding -------------------------------------------------------------------------------------

def test_seeding_sets_up_the_accounts_as_the_registry_describes_them(double, registry):
    tenants = [registry.tenant("agency-001"), registry.tenant("agency-002")]
    debts = [item("d-1", balance=1), item("d-2", balance=2)]
    seeded = seed(registry, {"agency-002": {"Debt": debts}}, tenants=tenants)
    central = seeded.central_access()
    ssm, sm = central.client("ssm"), central.client("secretsmanager")
    for t in tenants:
        parameter = ssm.get_parameter(Name=t.external_id_ref.removeprefix("ssm:"), WithDecryption=True)["Parameter"]
        assert (parameter["Type"], parameter["Value"]) == ("SecureString", seeded.external_ids[t.tenant_id])
        key = sm.get_secret_value(SecretId=t.pseudonym_key_ref.removeprefix("secretsmanager:"))["SecretString"]
        assert re.fullmatch(r"[0-9a-f]{64}", key) and key == seeded.pseudonym_keys[t.tenant_id]
        trust = tenant_client(t, "iam").get_role(RoleName="tenantlake-export")["Role"]["AssumeRolePolicyDocument"]
        trust = trust if isinstance(trust, dict) else json.loads(trust)
        assert trust["Statement"][0]["Condition"] == {
            "StringEquals": {"sts:ExternalId": seeded.external_ids[t.tenant_id]}}
        assert trust["Statement"][0]["Principal"] == {"AWS": "arn:aws:iam::200000000000:root"}
        ddb = tenant_client(t)
        assert sorted(ddb.list_tables()["TableNames"]) == sorted(t.tables.values())
        for table in t.tables.values():
            pitr = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
            assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    got = tenant_client(tenants[1]).scan(TableName=tenants[1].tables["Debt"])["Items"]
    assert sorted(got, key=lambda i: i["id"]["S"]) == debts
    buckets = {b["Name"] for b in central.client("s3").list_buckets()["Buckets"]}
    assert {"tenantlake-landing", "tenantlake-lake"} <= buckets
    policy = json.loads(central.client("s3").get_bucket_policy(Bucket="tenantlake-landing")["Policy"])
    assert {s["Resource"] for s in policy["Statement"]} == {
        f"arn:aws:s3:::tenantlake-landing/tenant={t.tenant_id}/*" for t in registry.enabled}


def test_the_central_users_keys_can_be_fixed_in_advance(double, registry):
    """So a docker-compose file can hold the Airflow connection before the double starts."""
    tenant = registry.tenant("agency-001")
    seeded = seed(registry, tenants=[tenant], central_key=("AKIATENANTLAKEDOUBLE", "d" * 40))
    assert (seeded.access_key_id, seeded.secret_access_key) == ("AKIATENANTLAKEDOUBLE", "d" * 40)
    central = aws.AwsAccess(boto3.Session(aws_access_key_id="AKIATENANTLAKEDOUBLE", aws_secret_access_key="d" * 40,
                                          region_name="us-east-1"), "us-east-1")
    assert central.client("sts").get_caller_identity()["Arn"] == "arn:aws:iam::200000000000:user/tenantlake-airflow"
    assert aws.tenant_access(tenant, central).client("sts").get_caller_identity()["Account"] == "211111111111"


def test_each_tenant_writes_only_its_own_tables_account(double, registry):
    """Two tenants, two accounts: one's role cannot see the other's tables."""
    tenants = [registry.tenant("agency-001"), registry.tenant("agency-003")]  # both in us-east-1
    seeded = seed(registry, tenants=tenants)
    one = aws.tenant_access(tenants[0], seeded.central_access())
    assert tenants[1].tables["Debt"] not in one.client("dynamodb").list_tables()["TableNames"]


# ---- as a server ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_server_plays_the_same_double_in_another_process(registry, tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tenantlake_dev.aws_double", "serve", "--port", str(port),
                             "--seed", "--seed-out", str(tmp_path / "seeded.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.strip() == f"export double at http://127.0.0.1:{port}", proc.stderr.read()[-2000:]
        endpoint = f"http://127.0.0.1:{port}"
        seeded = json.loads((tmp_path / "seeded.json").read_text())
        control = RemoteDouble(endpoint)
        control.configure(seconds=0, describes=1)
        central = aws.AwsAccess(boto3.Session(aws_access_key_id=seeded["access_key_id"],
                                              aws_secret_access_key=seeded["secret_access_key"],
                                              region_name="us-east-1"), "us-east-1", endpoint)
        tenant = registry.tenant("agency-002")
        with pytest.raises(ClientError, match="AccessDenied"):  # the trust policy is enforced there too
            central.client("sts").assume_role(RoleArn=tenant.role_arn, RoleSessionName="ss")
        aws.forget()
        ddb = aws.tenant_access(tenant, central).client("dynamodb")
        arn = ddb.export_table_to_point_in_time(
            TableArn=tenant.table_arn("Debt"), S3Bucket="tenantlake-landing", S3BucketOwner="200000000000",
            S3Prefix="tenant=agency-002/table=Debt")["ExportDescription"]["ExportArn"]
        assert ddb.describe_export(ExportArn=arn)["ExportDescription"]["ExportStatus"] == "IN_PROGRESS"
        done = ddb.describe_export(ExportArn=arn)["ExportDescription"]
        assert done["ExportStatus"] == "COMPLETED" and done["ExportManifest"].endswith("manifest-summary.json")
        assert control.state()["timing"]["describes"] == 1
    finally:
        aws.forget()
        proc.terminate()
        proc.wait(timeout=20)
    assert proc.returncode == 0


def test_a_server_in_this_process_shares_the_state(registry):
    STATE.reset()
    with DoubleServer() as server:
        control = server.control()
        control.set_clock(T0)
        seed(registry, endpoint_url=server.endpoint_url, tenants=[registry.tenant("agency-001")])
        assert RemoteDouble(server.endpoint_url).state()["now"] == T0.isoformat()
    STATE.reset()


# ---- a simulated fleet, played into the tables -------------------------------------------------

def test_a_played_fleet_exports_what_its_history_says(double, registry):
    from tenantlake_dev.aws_double import play_fleet
    from tenantlake_dev.simulate import FleetSpec

    spec = FleetSpec(consumers=60, days=1, warmup_days=10, full_export_at=T0 + 10 * H)
    tenant = registry.tenant("agency-001")
    played = play_fleet(registry, spec, double, tenants=[tenant])
    history = played.histories["agency-001"]
    entity = max(tenant.tables, key=lambda e: sum(c.entity == e for c in history.changes))
    changes = [c for c in history.changes if c.entity == entity]
    assert played.changes == len(history.changes) and len(changes) > 0
    # the table at the full export, from the history: an item changed later had, then, the old
    # image of its first later change; any other item is as it ended
    first_change = {}
    for c in changes:
        first_change.setdefault(c.key, c)
    expected_full = {k: v for k, v in history.state[entity].items() if k not in first_change}
    expected_full.update({k: c.old for k, c in first_change.items() if c.old is not None})
    f = Fleet.__new__(Fleet)  # the same helpers, on the played accounts
    f.double, f.registry, f.tenant, f.table, f.table_arn = double, registry, tenant, tenant.tables[entity], \
        tenant.table_arn(entity)
    f.central = played.seeded.central_access()
    f.ddb = aws.tenant_access(tenant, f.central).client("dynamodb")
    f.s3 = f.central.client("s3")
    double.set_clock(spec.full_export_at + 2 * 24 * H)
    prefix = {"S3Prefix": f"tenant=agency-001/table={entity}"}
    full = f.lines(f.finished(f.export(ExportTime=spec.full_export_at, **prefix)["ExportArn"]))
    assert {x["Item"]["id"]["S"]: x["Item"] for x in full} == expected_full
    end = spec.full_export_at + 24 * H
    window = [c for c in changes if us(spec.full_export_at) <= c.ts < us(end)]
    last = {c.key: c for c in window}
    expected_new = {k: c.new for k, c in last.items() if not (c.new is None and first_change[k].old is None)}
    lines = by_key(f.lines(f.finished(f.incremental(spec.full_export_at, end, **prefix)["ExportArn"])))
    assert {k: x.get("NewImage") for k, x in lines.items()} == expected_new
