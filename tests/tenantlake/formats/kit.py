"""Builds one export folder by hand, correct unless told to break one thing."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from tenantlake.contracts import ENTITIES
from tenantlake.formats.drift import merge_drift
from tenantlake.formats.dynamodb_json import Source, decode_file
from tenantlake.formats.ion import decode_ion
from tenantlake.formats.manifest import read_export, stream_slices
from tenantlake.storage import LocalStore

PREFIX = "tenant=agency-001/table=Debt"
EXPORT_ID = "01793491200000-0badf00d"
TABLE_ARN = "arn:aws:dynamodb:us-east-1:211111111111:table/Debt-k3j2h5-prod"
BASE = f"{PREFIX}/AWSDynamoDB/{EXPORT_ID}"
SUMMARY = f"{BASE}/manifest-summary.json"


def debt(i: int = 1, **attrs) -> dict:
    """A valid Debt item in DynamoDB JSON, with attributes replaced or added."""
    item = {
        "id": {"S": f"d-{i}"}, "__typename": {"S": "Debt"}, "createdAt": {"S": "2026-10-01T10:00:00.000Z"},
        "updatedAt": {"S": "2026-10-02T10:00:00.000Z"}, "_version": {"N": "2"},
        "_lastChangedAt": {"N": "1790000000000"}, "consumerId": {"S": "c-1"},
        "creditorName": {"S": "JPMCB CARD"}, "accountType": {"S": "CREDIT_CARD"},
        "balance": {"N": "1520.75"}, "apr": {"N": "24.99"}, "minimumPayment": {"N": "38.02"},
        "delinquencyDays": {"N": "30"}, "source": {"S": "TRANSUNION"}, "tags": {"SS": ["medical", "hardship"]},
        "bureau": {"M": {"name": {"S": "TRANSUNION"}, "pulledAt": {"S": "2026-10-01T10:00:00.000Z"},
                         "tradeline": {"M": {"opened": {"S": "2019-04"}, "highCredit": {"N": "2000"}}}}},
    }
    item.update(attrs)
    return {k: v for k, v in item.items() if v is not None}


def plan(i: int = 1, **attrs) -> dict:
    """A valid Plan item (it has a declared list of maps, `concessions`), attributes replaced or added."""
    item = {
        "id": {"S": f"p-{i}"}, "__typename": {"S": "Plan"}, "_version": {"N": "1"},
        "_lastChangedAt": {"N": "1790000000000"}, "consumerId": {"S": "c-1"}, "status": {"S": "ACTIVE"},
        "monthlyPayment": {"N": "250"}, "termMonths": {"N": "48"}, "startDate": {"S": "2026-11-01"},
        "enrolledDebtIds": {"SS": ["d-1", "d-2"]},
        "concessions": {"L": [{"M": {"creditorName": {"S": "CHASE"}, "newApr": {"N": "8.5"}}},
                              {"M": {"creditorName": {"S": "CITI"}, "newApr": {"N": "9.9"}}}]},
    }
    item.update(attrs)
    return {k: v for k, v in item.items() if v is not None}


def line(item: dict) -> bytes:
    return json.dumps({"Item": item}, separators=(",", ":")).encode() + b"\n"


def write_export(root: Path, files: list[bytes], *, kind: str = "FULL_EXPORT", gz: list[bytes] | None = None,
                 counts: list[int] | None = None, summary_count: int | None = None,
                 md5s: list[str] | None = None, missing: tuple[int, ...] = (), table_arn: str = TABLE_ARN,
                 view: str = "NEW_AND_OLD_IMAGES") -> LocalStore:
    """files: each data file's decompressed text. gz overrides the stored bytes; counts, md5s and
    summary_count override what the manifests claim; missing drops files after listing them."""
    store = LocalStore(root)
    store.put(f"{BASE}/_started", b"")
    entries = []
    for i, text in enumerate(files):
        body = gz[i] if gz else gzip.compress(text, mtime=0)
        key = f"{BASE}/data/file{i}.json.gz"
        if i not in missing:
            store.put(key, body)
        count = counts[i] if counts else len([ln for ln in text.split(b"\n") if ln.strip()])
        md5 = md5s[i] if md5s else base64.b64encode(hashlib.md5(body).digest()).decode()
        entries.append({"itemCount": count, "md5Checksum": md5, "etag": "x", "dataFileS3Key": key})
    store.put(f"{BASE}/manifest-files.json", b"".join(json.dumps(e).encode() + b"\n" for e in entries))
    summary = {"version": "2020-06-30", "exportArn": f"{table_arn}/export/{EXPORT_ID}", "tableArn": table_arn,
               "exportTime": "2026-11-01T00:00:00.000Z", "s3Prefix": PREFIX,
               "manifestFilesS3Key": f"{BASE}/manifest-files.json", "outputFormat": "DYNAMODB_JSON",
               "itemCount": summary_count if summary_count is not None else sum(e["itemCount"] for e in entries)}
    if kind == "INCREMENTAL_EXPORT":
        summary.update(version="2023-08-01", exportType="INCREMENTAL_EXPORT", outputView=view,
                       exportFromTime="2026-11-01T00:00:00.000Z", exportToTime="2026-11-01T01:00:00.000Z")
    store.put(SUMMARY, json.dumps(summary).encode())
    return store


@dataclass
class Result:
    rows: list[dict]
    quarantine: list[dict]
    lines: list[int]  # item lines each data file held, in manifest order
    drift: list


def decode_export(store: LocalStore, entity: str = "Debt", tenant_id: str = "agency-001",
                  summary_key: str = SUMMARY, threads: bool = True) -> Result:
    """The formats layer over one export, as ingest drives it: manifests verified, every data
    file streamed in slices and decoded. Ingest's own steps (the line count against the manifest,
    staging, audit, publish) are not here: `lines` lets a test make that comparison."""
    export = read_export(store, summary_key)
    rows, quarantine, lines, drift = [], [], [], []
    for f in export.files:
        src = Source(tenant_id, export.export_id, f.key, export.kind, export.export_time_us, export.view)
        n = 0
        for piece in stream_slices(store, f):
            if export.format == "ION":
                d = decode_ion(piece.text, ENTITIES.get(entity), src, piece.first_line)
            else:
                d = decode_file(piece.text, ENTITIES.get(entity), src, threads, piece.first_line, piece.line_ends)
            rows += d.rows.to_pylist()
            quarantine += d.quarantine.to_pylist()
            drift.append(d.drift)
            n += d.lines
        lines.append(n)
    return Result(rows, quarantine, lines, merge_drift(*drift))
