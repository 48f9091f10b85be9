"""DynamoDB's exports as the double plays them, on moto's tables (see
../shared/reference/dynamodb-exports.md for the layout; moto 5.2.5's gaps are listed in
measurements.md).

Every write (PutItem, UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems: they all end in
Table.put_item / Table.delete_item / DynamoDBBackend.update_item) is remembered with the double's
clock, so a table can be read as it was at any time: that is what point-in-time and incremental
exports answer from. The readings the double takes where AWS's documentation is silent:
  - a full export at T holds the writes before T; an incremental window [from, to) the writes at
    or after `from` and before `to` (so full(T) + incremental[T, U) = full(U));
  - a key created and deleted inside one window leaves no line;
  - incremental data files go to <prefix>/AWSDynamoDB/data/ (the "shared data folder"), full
    ones to <prefix>/AWSDynamoDB/<export id>/data/; .checksum files hold the MD5 hex digest;
  - a missing bucket, or one the export may not write (another account without S3BucketOwner,
    a bucket policy that does not allow the key), is not refused: the export FAILS, with
    S3NoSuchBucket or S3AccessDenied, as AWS does for a missing bucket;
  - a ClientToken reused with other parameters is ExportConflictException (botocore's current
    model; older API pages said IdempotentParameterMismatch).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
import re
import string
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from moto.core.exceptions import JsonRESTError
from moto.dynamodb.models.utilities import dynamo_json_dump

from tenantlake_dev.aws_double.policy import Caller, allows
from tenantlake_dev.aws_double.state import STATE, Rule

ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
MIN_WINDOW = timedelta(minutes=15)
MAX_WINDOW = timedelta(hours=24)
TOKEN_WINDOW = timedelta(hours=8)
ENUMS = {"ExportFormat": ("DYNAMODB_JSON", "ION"), "ExportType": ("FULL_EXPORT", "INCREMENTAL_EXPORT"),
         "S3SseAlgorithm": ("AES256", "KMS")}
VIEWS = ("NEW_IMAGE", "NEW_AND_OLD_IMAGES")
TABLE_ARN = re.compile(r"^arn:aws[a-z-]*:dynamodb:([a-z0-9-]+):(\d{12}):table/([A-Za-z0-9_.-]{3,255})$")
_names = random.Random()  # data file names only: random as AWS's are, no bearing on content


def error(code: str, message: str) -> JsonRESTError:
    return JsonRESTError(ERROR_PREFIX + code, message)


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _dt(us: int | None) -> datetime | None:
    return None if us is None else datetime.fromtimestamp(us / 1e6, UTC)


# ---- item history ----------------------------------------------------------------------------

HISTORY = "_double_history"
PITR_SINCE = "_double_pitr_since_us"
TABLE_ID = "_double_table_id"


@dataclass(frozen=True)
class Write:
    ts_us: int
    key: str  # the key attributes as canonical JSON: one identity per item
    keys: dict
    image: dict | None  # the item after the write; None: deleted


def _plain(item) -> dict:
    return json.loads(dynamo_json_dump(item.to_json()["Attributes"]))


def _write(table, item, ts_us: int, deleted: bool = False) -> Write:
    image = _plain(item)
    keys = {k: image[k] for k in (table.hash_key_attr, table.range_key_attr) if k}
    return Write(ts_us, json.dumps(keys, sort_keys=True), keys, None if deleted else image)


def history(table) -> list[Write]:
    """The table's writes in time order. Items that were there before the double saw the table
    count as written at time 0."""
    writes = table.__dict__.get(HISTORY)
    if writes is None:
        writes = table.__dict__[HISTORY] = [_write(table, item, 0) for item in table.all_items()]
    return writes


def record(table, item, deleted: bool = False) -> None:
    if item is not None:
        history(table).append(_write(table, item, STATE.clock.stamp_us(), deleted))


def state_at(table, before_us: int) -> dict[str, dict]:
    """key -> image of the items as they were just before `before_us`."""
    items: dict[str, dict | None] = {}
    for w in history(table):
        if w.ts_us >= before_us:
            break
        items[w.key] = w.image
    return {k: v for k, v in items.items() if v is not None}


def changes(table, from_us: int, to_us: int) -> list[tuple[Write, dict | None]]:
    """Each key written in [from, to) once: (its last write, its image before the window)."""
    before = state_at(table, from_us)
    last: dict[str, Write] = {}
    for w in history(table):
        if from_us <= w.ts_us < to_us:
            last[w.key] = w
    return [(w, before.get(k)) for k, w in last.items() if w.image is not None or before.get(k) is not None]


def pitr_since_us(table) -> int | None:
    """When point-in-time recovery was (last) turned on; None while it is off."""
    described = table.continuous_backups["PointInTimeRecoveryDescription"]
    if described.get("PointInTimeRecoveryStatus") != "ENABLED":
        return None
    since = table.__dict__.get(PITR_SINCE)
    if since is None:  # enabled before the double was active: trust moto's record
        since = int(float(described.get("EarliestRestorableDateTime", 0)) * 1_000_000)
    return since


# ---- patches of moto's tables and backend (installed by patches.py) -----------------------------

def table_put_item(original):
    def put_item(self, item_attrs, *args, **kwargs):
        history(self)  # before the write: a first look must not count it as old
        item = original(self, item_attrs, *args, **kwargs)
        record(self, item)
        return item
    return put_item


def table_delete_item(original):
    def delete_item(self, hash_key, range_key):
        history(self)
        item = original(self, hash_key, range_key)
        record(self, item, deleted=True)
        return item
    return delete_item


def backend_update_item(original):
    def update_item(self, table_name, *args, **kwargs):
        table = self.get_table(table_name)
        history(table)
        item = original(self, table_name, *args, **kwargs)
        record(table, item)  # moto updates the item in place: its state after the update
        return item
    return update_item


def backend_update_continuous_backups(original):
    def update_continuous_backups(self, table_name, point_in_time_spec):
        table = self.get_table(table_name)
        was_on = pitr_since_us(table) is not None
        result = original(self, table_name, point_in_time_spec)
        if point_in_time_spec.get("PointInTimeRecoveryEnabled") and not was_on:
            now = STATE.clock.now_us()
            table.__dict__[PITR_SINCE] = now
            table.continuous_backups["PointInTimeRecoveryDescription"]["EarliestRestorableDateTime"] = now / 1e6
        elif not point_in_time_spec.get("PointInTimeRecoveryEnabled"):
            table.__dict__.pop(PITR_SINCE, None)
        return result
    return update_continuous_backups


def backend_describe_continuous_backups(original):
    def describe_continuous_backups(self, table_name):
        result = original(self, table_name)
        pitr = result.get("PointInTimeRecoveryDescription", {})
        if pitr.get("PointInTimeRecoveryStatus") == "ENABLED":
            pitr["LatestRestorableDateTime"] = STATE.clock.now_us() / 1e6
        return result
    return describe_continuous_backups


# ---- exports -----------------------------------------------------------------------------------

@dataclass
class DoubleExport:
    arn: str
    export_id: str
    table: object  # moto's Table
    table_arn: str
    account: str
    region: str
    caller: Caller
    kind: str
    fmt: str
    bucket: str
    prefix: str
    bucket_owner: str | None
    sse: str
    sse_kms_key: str | None
    client_token: str | None
    params: str  # the request without its ClientToken, canonical JSON (for ClientToken checks)
    export_time_us: int | None
    from_us: int | None
    to_us: int | None
    view: str | None
    start_us: int
    due_monotonic: float
    due_describes: int
    rule: Rule | None
    status: str = "IN_PROGRESS"
    describes: int = 0
    end_us: int | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    item_count: int | None = None
    billed: int | None = None
    manifest: str | None = None
    written: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"{self.prefix}/AWSDynamoDB/{self.export_id}" if self.prefix else f"AWSDynamoDB/{self.export_id}"

    @property
    def shared_data(self) -> str:
        return f"{self.prefix}/AWSDynamoDB/data" if self.prefix else "AWSDynamoDB/data"

    def description(self) -> dict:
        d = {"ExportArn": self.arn, "ExportStatus": self.status, "StartTime": _dt(self.start_us),
             "TableArn": self.table_arn, "TableId": table_id(self.table), "S3Bucket": self.bucket,
             "S3Prefix": self.prefix, "S3SseAlgorithm": self.sse, "ExportFormat": self.fmt,
             "ExportType": self.kind}
        optional = {"EndTime": _dt(self.end_us), "ExportManifest": self.manifest,
                    "ExportTime": _dt(self.export_time_us), "ClientToken": self.client_token,
                    "S3BucketOwner": self.bucket_owner, "S3SseKmsKeyId": self.sse_kms_key,
                    "FailureCode": self.failure_code, "FailureMessage": self.failure_message,
                    "ItemCount": self.item_count, "BilledSizeBytes": self.billed}
        d.update({k: v for k, v in optional.items() if v is not None})
        if self.kind == "INCREMENTAL_EXPORT":
            d["IncrementalExportSpecification"] = {"ExportFromTime": _dt(self.from_us),
                                                   "ExportToTime": _dt(self.to_us), "ExportViewType": self.view}
        return d

    def summary(self) -> dict:
        return {"ExportArn": self.arn, "ExportStatus": self.status, "ExportType": self.kind}


def table_id(table) -> str:
    return table.__dict__.setdefault(TABLE_ID, str(uuid.uuid4()))


def _time_us(value, name: str) -> int:
    """A request timestamp: moto hands them over parsed (datetime), raw JSON has epoch seconds."""
    try:
        if isinstance(value, datetime):
            return int(value.timestamp() * 1_000_000)
        if isinstance(value, int | float):
            return int(round(float(value) * 1_000_000))
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1_000_000)
    except (TypeError, ValueError):
        raise error("ValidationException", f"{value!r} at '{name}' is not a timestamp") from None


def _enum(body: dict, name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = body.get(name, default)
    if value not in allowed:
        field_name = name[0].lower() + name[1:]
        raise error("ValidationException", f"1 validation error detected: Value '{value}' at '{field_name}' "
                    f"failed to satisfy constraint: Member must satisfy enum value set: [{', '.join(allowed)}]")
    return value


def _tokens(backend) -> dict[str, DoubleExport]:
    return backend.__dict__.setdefault("_double_tokens", {})


def _exports(backend) -> list[DoubleExport]:
    return [e for e in backend.table_exports.values() if isinstance(e, DoubleExport)]


def request_export(backend, body: dict, caller: Caller, account: str, region: str) -> DoubleExport:
    """ExportTableToPointInTime: checked as DynamoDB checks it, then started."""
    for name in ("TableArn", "S3Bucket"):
        if not body.get(name):
            raise error("ValidationException", f"1 validation error detected: Value null at '{name[0].lower()}"
                        f"{name[1:]}' failed to satisfy constraint: Member must not be null")
    fmt = _enum(body, "ExportFormat", "DYNAMODB_JSON", ENUMS["ExportFormat"])
    kind = _enum(body, "ExportType", "FULL_EXPORT", ENUMS["ExportType"])
    sse = _enum(body, "S3SseAlgorithm", "AES256", ENUMS["S3SseAlgorithm"])
    token = body.get("ClientToken")
    params = json.dumps({k: v for k, v in body.items() if k != "ClientToken"}, sort_keys=True, default=str)
    now = STATE.clock.stamp_us()
    with STATE.lock:
        if token:
            earlier = _tokens(backend).get(token)
            expired = earlier is not None and earlier.end_us is not None and now - earlier.end_us > \
                TOKEN_WINDOW.total_seconds() * 1e6
            if earlier is not None and not expired:
                if earlier.params != params:
                    raise error("ExportConflictException", f"ClientToken {token} was used for another export "
                                f"request ({earlier.arn}) with different parameters")
                return earlier
        table = _table(backend, body["TableArn"], account, region)
        since = pitr_since_us(table)
        if since is None:
            raise error("PointInTimeRecoveryUnavailableException",
                        f"Point in time recovery is not enabled for table '{table.name}'")
        export_time, from_us, to_us, view = _times(body, kind, fmt, since, now)
        export_id = f"{now // 1000:014d}-{uuid.uuid4().hex[:8]}"
        export = DoubleExport(
            arn=f"{table.table_arn}/export/{export_id}", export_id=export_id, table=table,
            table_arn=table.table_arn, account=account, region=region, caller=caller, kind=kind, fmt=fmt,
            bucket=body["S3Bucket"], prefix=(body.get("S3Prefix") or "").strip("/"),
            bucket_owner=body.get("S3BucketOwner"), sse=sse, sse_kms_key=body.get("S3SseKmsKeyId"),
            client_token=token, params=params, export_time_us=export_time, from_us=from_us, to_us=to_us,
            view=view, start_us=now, due_monotonic=time.monotonic() + STATE.timing.seconds,
            due_describes=STATE.timing.describes, rule=STATE.rule_for(table.table_arn))
        backend.table_exports[export.arn] = export
        if token:
            _tokens(backend)[token] = export
        if _refusal(export, [f"{export.base}/_started"]) is None:
            _put(export, f"{export.base}/_started", b"")
    return export


def _table(backend, table_arn: str, account: str, region: str):
    m = TABLE_ARN.match(table_arn)
    if not m:
        raise error("ValidationException", f"Invalid TableArn: {table_arn}")
    table = backend.tables.get(m.group(3))
    if (m.group(1), m.group(2)) != (region, account) or table is None:
        raise error("TableNotFoundException", f"Table not found: {table_arn}")
    return table


def _times(body: dict, kind: str, fmt: str, since: int, now: int):
    """(export time, from, to, view) of a request, refused where DynamoDB refuses it."""
    spec = body.get("IncrementalExportSpecification")
    if kind == "FULL_EXPORT":
        if spec:
            raise error("ValidationException", "IncrementalExportSpecification is only valid with "
                        "ExportType INCREMENTAL_EXPORT")
        at = _time_us(body["ExportTime"], "exportTime") if "ExportTime" in body else now
        if not since <= at <= now:
            raise error("InvalidExportTimeException", f"Export Time is invalid: {_iso(at)} is outside the point "
                        f"in time recovery window ({_iso(since)} .. {_iso(now)})")
        return at, None, None, None
    if "ExportTime" in body:
        raise error("ValidationException", "ExportTime is only valid with ExportType FULL_EXPORT")
    if not spec or "ExportFromTime" not in spec:
        raise error("ValidationException", "IncrementalExportSpecification with ExportFromTime is required "
                    "for ExportType INCREMENTAL_EXPORT")
    if fmt != "DYNAMODB_JSON":
        raise error("ValidationException", "the export double writes incremental exports in DYNAMODB_JSON only")
    view = _enum(spec, "ExportViewType", "NEW_AND_OLD_IMAGES", VIEWS)
    frm = _time_us(spec["ExportFromTime"], "exportFromTime")
    to = _time_us(spec["ExportToTime"], "exportToTime") if spec.get("ExportToTime") is not None else now
    if frm >= to:
        raise error("ValidationException", "ExportFromTime must be earlier than ExportToTime")
    span = timedelta(microseconds=to - frm)
    if span < MIN_WINDOW or span > MAX_WINDOW:
        raise error("ValidationException", f"The incremental export period must be between 15 minutes and "
                    f"24 hours; {_iso(frm)} .. {_iso(to)} is {span}")
    if frm < since or to > now:
        raise error("InvalidExportTimeException", f"Export Time is invalid: {_iso(frm)} .. {_iso(to)} is outside "
                    f"the point in time recovery window ({_iso(since)} .. {_iso(now)})")
    return None, frm, to, view


# ---- running an export ------------------------------------------------------------------------

def _bucket_account(bucket: str) -> tuple[str, str] | None:
    from moto.s3.models import s3_backends

    return s3_backends.bucket_accounts.get(bucket)  # (partition, account)


def _refusal(export: DoubleExport, keys: list[str]) -> tuple[str, str] | None:
    """Why S3 would refuse the export's writes: (FailureCode, FailureMessage), or None."""
    from moto.s3.models import s3_backends

    owner = _bucket_account(export.bucket)
    if owner is None:
        return "S3NoSuchBucket", "The specified bucket does not exist"
    partition, account = owner
    if export.bucket_owner and export.bucket_owner != account:
        return "S3AccessDenied", (f"Access Denied: bucket {export.bucket} is not owned by the "
                                  f"S3BucketOwner given ({export.bucket_owner})")
    if account == export.account:
        return None
    if not export.bucket_owner:
        return "S3AccessDenied", (f"Access Denied: bucket {export.bucket} is in another account; "
                                  "S3BucketOwner is required")
    policy = s3_backends[account][partition].buckets[export.bucket].policy
    doc = json.loads(policy) if policy else {}
    for key in keys:
        if not allows(doc, export.caller, "s3:PutObject", f"arn:aws:s3:::{export.bucket}/{key}",
                      {"aws:SecureTransport": "true"}):
            return "S3AccessDenied", (f"Access Denied: the bucket policy of {export.bucket} does not let "
                                      f"{export.caller.arn} write {key}")
    return None


def _put(export: DoubleExport, key: str, body: bytes) -> str:
    from moto.s3.models import s3_backends

    partition, account = _bucket_account(export.bucket)
    written = s3_backends[account][partition].put_object(export.bucket, key, body)
    export.written.append(key)
    return written.etag.strip('"')


def _name() -> str:
    return "".join(_names.choices(string.ascii_lowercase + "234567", k=26))


def _lines(export: DoubleExport) -> list[bytes]:
    if export.kind == "FULL_EXPORT":
        items = state_at(export.table, export.export_time_us).values()
        if export.fmt == "ION":
            from tenantlake_dev.simulate.exports import ion_value

            return [("{Item:{" + ",".join(f"{json.dumps(k)}:{ion_value(v)}" for k, v in item.items())
                     + "}}\n").encode() for item in items]
        return [json.dumps({"Item": item}).encode() + b"\n" for item in items]
    out = []
    for last, old in changes(export.table, export.from_us, export.to_us):
        line: dict = {"Metadata": {"WriteTimestampMicros": {"N": str(last.ts_us)}}, "Keys": last.keys}
        if old is not None and export.view == "NEW_AND_OLD_IMAGES":
            line["OldImage"] = old
        if last.image is not None:
            line["NewImage"] = last.image
        out.append(json.dumps(line).encode() + b"\n")
    return out


def _files(export: DoubleExport, lines: list[bytes]) -> list[tuple[str, list[bytes]]]:
    """(key, lines) of each data file: a full export's items spread over the configured number of
    files (some may be empty, as an empty partition's are); an incremental one's in one file in
    the shared data folder, or none when nothing changed."""
    ext = "ion.gz" if export.fmt == "ION" else "json.gz"
    if export.kind == "INCREMENTAL_EXPORT":
        return [(f"{export.shared_data}/{_name()}.{ext}", lines)] if lines else []
    n = max(1, STATE.timing.data_files)
    size = -(-len(lines) // n) if lines else 0
    return [(f"{export.base}/data/{_name()}.{ext}", lines[i * size:(i + 1) * size]) for i in range(n)]


def run(export: DoubleExport) -> None:
    """Write the export's files and finish it (COMPLETED, or FAILED as a rule or S3 says)."""
    lines = _lines(export)
    files = _files(export, lines)
    summary_key = f"{export.base}/manifest-summary.json"
    keys = [f"{export.base}/_started", *(k for k, _ in files), f"{export.base}/manifest-files.json",
            f"{export.base}/manifest-files.checksum", summary_key, f"{export.base}/manifest-summary.checksum"]
    refused = _refusal(export, keys)
    if refused or (export.rule and export.rule.failure_code):
        code, message = refused or (export.rule.failure_code, export.rule.failure_message)
        export.status, export.failure_code, export.failure_message = "FAILED", code, message
        export.end_us = STATE.clock.now_us()
        return
    manifest, billed = [], 0
    for key, chunk in files:
        raw = b"".join(chunk)
        if export.fmt == "ION" and raw:
            raw = b"$ion_1_0 " + raw
        body = gzip.compress(raw)
        etag = _put(export, key, body)
        billed += len(raw)
        manifest.append(json.dumps({"itemCount": len(chunk), "md5Checksum": base64.b64encode(
            hashlib.md5(body).digest()).decode(), "etag": etag, "dataFileS3Key": key}).encode() + b"\n")
    manifest_files = b"".join(manifest)
    _put(export, f"{export.base}/manifest-files.json", manifest_files)
    _put(export, f"{export.base}/manifest-files.checksum", hashlib.md5(manifest_files).hexdigest().encode())
    export.end_us = max(STATE.clock.now_us(), export.start_us)
    export.item_count, export.billed = len(lines), billed
    doc = {"version": "2020-06-30" if export.kind == "FULL_EXPORT" else "2023-08-01",
           "exportArn": export.arn, "startTime": _iso(export.start_us), "endTime": _iso(export.end_us),
           "tableArn": export.table_arn, "tableId": table_id(export.table)}
    if export.kind == "FULL_EXPORT":
        doc["exportTime"] = _iso(export.export_time_us)
    else:
        doc.update(exportType="INCREMENTAL_EXPORT", exportFromTime=_iso(export.from_us),
                   exportToTime=_iso(export.to_us), outputView=export.view)
    doc.update(s3Bucket=export.bucket, s3Prefix=export.prefix or None, s3SseAlgorithm=export.sse,
               s3SseKmsKeyId=export.sse_kms_key, manifestFilesS3Key=f"{export.base}/manifest-files.json",
               billedSizeBytes=billed, itemCount=len(lines), outputFormat=export.fmt)
    body = json.dumps(doc).encode()
    _put(export, summary_key, body)
    _put(export, f"{export.base}/manifest-summary.checksum", hashlib.md5(body).hexdigest().encode())
    export.manifest, export.status = summary_key, "COMPLETED"


def settle(export: DoubleExport, force: bool = False) -> None:
    """Finish the export if it is due (or `force`d), unless a rule stalls it."""
    with STATE.lock:
        if export.status != "IN_PROGRESS" or (export.rule and export.rule.stall):
            return
        if force or (time.monotonic() >= export.due_monotonic and export.describes >= export.due_describes):
            run(export)


def describe_export(backend, arn: str) -> DoubleExport:
    export = backend.table_exports.get(arn)
    if not isinstance(export, DoubleExport):
        raise error("ExportNotFoundException", f"Export not found: {arn}")
    with STATE.lock:
        if export.status == "IN_PROGRESS" and export.describes < export.due_describes:
            export.describes += 1
            return export
    settle(export)
    return export


def list_exports(backend, table_arn: str | None, max_results: int | None, next_token: str | None):
    exports = [e for e in _exports(backend) if table_arn is None or e.table_arn == table_arn]
    start = int(next_token or 0)
    size = max_results or 25
    page = exports[start:start + size]
    for e in page:
        settle(e)
    more = start + size < len(exports)
    return page, str(start + size) if more else None


def all_exports() -> list[DoubleExport]:
    from moto.dynamodb.models import dynamodb_backends

    return [e for _, regions in list(dynamodb_backends.items()) for _, backend in list(regions.items())
            for e in _exports(backend)]


# ---- moto's DynamoDB handler, three operations replaced ------------------------------------------

def _caller(handler) -> Caller:
    from moto.sts.models import sts_backends

    _, arn, account = sts_backends[handler.current_account]["aws"].get_caller_identity(
        handler.get_access_key(), handler.region)
    return Caller(arn, account)


def handler_export_table_to_point_in_time(_original):
    def export_table_to_point_in_time(self):
        from moto.core.responses import ActionResult

        export = request_export(self.dynamodb_backend, self.body, _caller(self), self.current_account, self.region)
        return ActionResult({"ExportDescription": export.description()})
    return export_table_to_point_in_time


def handler_describe_export(_original):
    def describe_export_(self):
        from moto.core.responses import ActionResult

        export = describe_export(self.dynamodb_backend, self.body.get("ExportArn", ""))
        return ActionResult({"ExportDescription": export.description()})
    return describe_export_


def handler_list_exports(_original):
    def list_exports_(self):
        from moto.core.responses import ActionResult

        page, token = list_exports(self.dynamodb_backend, self.body.get("TableArn"), self.body.get("MaxResults"),
                                   self.body.get("NextToken"))
        result: dict = {"ExportSummaries": [e.summary() for e in page]}
        if token:
            result["NextToken"] = token
        return ActionResult(result)
    return list_exports_
