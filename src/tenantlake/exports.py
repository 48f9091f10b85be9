"""Asking DynamoDB for exports: FULL first, then INCREMENTAL windows from the watermark.

Each request carries a ClientToken derived from (tenant, table, window), so a retried task gets
back the export it already started instead of a second one. Windows follow DynamoDB's rules:
15 minutes to 24 hours, start inclusive, end exclusive; a remainder under 15 minutes waits.

Requests go to the tenant's DynamoDB: pass the tenant's AwsAccess (tenantlake.aws.tenant_access),
whose client carries the connection's endpoint, or a ready DynamoDB client.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from botocore.exceptions import ClientError

MIN_WINDOW = timedelta(minutes=15)
MAX_WINDOW = timedelta(hours=24)
MAX_WINDOWS_PER_RUN = 96  # after a long outage, catch up over several runs rather than at once
TOKEN_NAMESPACE = uuid.UUID("5b0c1ad2-8d4f-4c59-9a55-3f1e0d7a2b61")


@dataclass(frozen=True)
class ExportRequest:
    tenant_id: str
    entity: str
    kind: str  # FULL_EXPORT | INCREMENTAL_EXPORT
    from_time: datetime | None
    to_time: datetime  # a full export's ExportTime
    attempt: int = 0  # asked again after the export FAILED (request_once)

    @property
    def client_token(self) -> str:
        """Deterministic per (tenant, table, window, attempt): the same request is the same export."""
        window = f"{self.from_time.isoformat() if self.from_time else ''}/{self.to_time.isoformat()}"
        again = f"|{self.attempt}" if self.attempt else ""
        return str(uuid.uuid5(TOKEN_NAMESPACE, f"{self.tenant_id}|{self.entity}|{self.kind}|{window}{again}"))


def windows(start: datetime, end: datetime, step: timedelta) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into windows of `step` (clamped to 15 min .. 24 h); a remainder shorter
    than 15 minutes is left for the next run."""
    step = min(max(step, MIN_WINDOW), MAX_WINDOW)
    out, at = [], start
    while at < end and len(out) < MAX_WINDOWS_PER_RUN:
        to = min(at + step, end)
        if to - at < MIN_WINDOW:
            break
        out.append((at, to))
        at = to
    return out


PITR_DAYS = 35  # DynamoDB keeps point-in-time recovery for 35 days: no export reaches further back


Window = tuple[datetime, datetime]  # [from, to)


def missing(start: datetime, end: datetime, covered: list[Window]) -> list[Window]:
    """The parts of [start, end) no covered interval holds (a backfill asks for exactly these)."""
    gaps, at = [], start
    for lo, hi in sorted(covered):
        if hi <= at or lo >= end:
            continue
        if lo > at:
            gaps.append((at, lo))
        at = max(at, hi)
    if at < end:
        gaps.append((at, end))
    return gaps


def backfill_requests(tenant_id: str, entity: str, start: datetime, end: datetime, step: timedelta,
                      covered: list[Window]) -> list[ExportRequest]:
    """INCREMENTAL windows over the parts of [start, end) not yet published, in order."""
    return [ExportRequest(tenant_id, entity, "INCREMENTAL_EXPORT", a, b)
            for lo, hi in missing(start, end, covered) for a, b in windows(lo, hi, step)]


def check_backfill_range(start: datetime, end: datetime, now: datetime) -> None:
    """A backfill range DynamoDB can export, or a ValueError saying why not."""
    if start >= end:
        raise ValueError(f"backfill range {start.isoformat()} .. {end.isoformat()} is empty")
    if end > now:
        raise ValueError(f"backfill range ends in the future ({end.isoformat()})")
    if start < now - timedelta(days=PITR_DAYS):
        raise ValueError(f"backfill range starts {start.isoformat()}, before DynamoDB's {PITR_DAYS}-day "
                         "point-in-time window: those changes can no longer be exported")


def plan_requests(tenant_id: str, entity: str, watermark_us: int | None, interval_end: datetime,
                  step: timedelta, resnapshot: bool = False) -> list[ExportRequest]:
    if watermark_us is None or resnapshot:
        return [ExportRequest(tenant_id, entity, "FULL_EXPORT", None, interval_end)]
    start = datetime.fromtimestamp(watermark_us / 1e6, UTC)
    return [ExportRequest(tenant_id, entity, "INCREMENTAL_EXPORT", a, b)
            for a, b in windows(start, interval_end, step)]


def _dynamodb(where, region: str):
    """A DynamoDB client in `region` from an AwsAccess; a client is used as given. (boto3 is
    imported when a request is made, not when windows are planned.)"""
    from tenantlake.aws import AwsAccess

    return where.client("dynamodb", region) if isinstance(where, AwsAccess) else where


def request_export(dynamodb, tenant, req: ExportRequest, bucket: str, bucket_owner: str) -> str:
    """Start (or, with the same token, find again) one export; returns its ARN. `dynamodb` is
    the tenant's AwsAccess or a DynamoDB client of the tenant's account."""
    dynamodb = _dynamodb(dynamodb, tenant.region)
    args = dict(TableArn=tenant.table_arn(req.entity), ClientToken=req.client_token, S3Bucket=bucket,
                S3BucketOwner=bucket_owner, S3Prefix=f"tenant={tenant.tenant_id}/table={req.entity}",
                ExportFormat="DYNAMODB_JSON", ExportType=req.kind)
    if req.kind == "FULL_EXPORT":
        args["ExportTime"] = req.to_time
    else:
        args["IncrementalExportSpecification"] = {
            "ExportFromTime": req.from_time, "ExportToTime": req.to_time,
            "ExportViewType": "NEW_AND_OLD_IMAGES"}
    try:
        return dynamodb.export_table_to_point_in_time(**args)["ExportDescription"]["ExportArn"]
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "PointInTimeRecoveryUnavailableException":
            raise
        raise ExportFailed(f"{args['TableArn']}: point-in-time recovery is off, and exports need it: turn it on "
                           f"(UpdateContinuousBackups; `tenantlake onboard --tenant {tenant.tenant_id} --check` "
                           f"checks every table of the tenant)") from None


def request_once(dynamodb, tenant, req: ExportRequest, bucket: str, bucket_owner: str, ledger) -> str:
    """request_export, remembered: the ARN is kept beside the lake under the request's token, so
    a retry after DynamoDB's 8-hour token window (or a retried task) reuses the same export."""
    key = f"_state/requests/tenant_id={req.tenant_id}/{req.entity}/{req.client_token}.json"
    if ledger.exists(key):
        kept = orjson.loads(ledger.get(key))
        try:
            describe(dynamodb, kept["arn"])
            return kept["arn"]
        except ExportFailed:
            # A FAILED export is never reused: it was handed back for ever, and the table could not
            # get past its window (independent probe). Asked again under a new token, as DynamoDB
            # returns the same failed export for the old one.
            req = dataclasses.replace(req, attempt=kept.get("attempt", 0) + 1)
    arn = request_export(dynamodb, tenant, req, bucket, bucket_owner)
    ledger.put(key, orjson.dumps({"arn": arn, "kind": req.kind, "to": req.to_time.isoformat(),
                                  "from": req.from_time.isoformat() if req.from_time else None,
                                  "attempt": req.attempt}))
    return arn


def manifest_key(tenant_id: str, entity: str, arn: str, described: str | None) -> str:
    """Where the export's manifest-summary.json is: as DescribeExport says, else AWS's layout."""
    if described:
        return described
    export_id = arn.rsplit("/", 1)[-1]
    return f"tenant={tenant_id}/table={entity}/AWSDynamoDB/{export_id}/manifest-summary.json"


class ExportFailed(RuntimeError):
    """DynamoDB reported the export FAILED; the message carries its FailureCode and FailureMessage."""


def describe(dynamodb, arn: str) -> dict:
    """{"arn", "status", "manifest", "items"}; raises ExportFailed with AWS's reason. `dynamodb`
    is the tenant's AwsAccess (the ARN names the region) or a DynamoDB client."""
    d = _dynamodb(dynamodb, arn.split(":")[3]).describe_export(ExportArn=arn)["ExportDescription"]
    if d["ExportStatus"] == "FAILED":
        raise ExportFailed(f"export {arn} failed: {d.get('FailureCode', '?')}: {d.get('FailureMessage', '')}")
    return {"arn": arn, "status": d["ExportStatus"], "manifest": d.get("ExportManifest"),
            "items": d.get("ItemCount")}
