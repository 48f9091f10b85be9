"""Write what DynamoDB writes: export folders (full and incremental) and stream records.

The layout and the manifest fields follow ../shared/reference/dynamodb-exports.md. Gzip is
written with mtime 0, and every "random" name comes from the seeded generator, so a seed gives
byte-identical files.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import random
import string
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import orjson

from tenantlake.registry import Tenant
from tenantlake.storage import Store
from tenantlake_dev.simulate.history import Change, iso

ITEMS_PER_FILE = 40_000  # a table partition's share; AWS writes one or more files per partition


@dataclass
class ExportRecord:
    """One export as the simulator wrote it: the ground truth the reader is checked against."""

    tenant_id: str
    entity: str
    kind: str  # FULL_EXPORT | INCREMENTAL_EXPORT | STREAM_PIPES | STREAM_FIREHOSE
    export_id: str
    manifest_key: str | None
    item_count: int
    data_files: int
    from_us: int | None
    to_us: int


def _name(rng: random.Random, n: int = 26) -> str:
    return "".join(rng.choices(string.ascii_lowercase + "234567", k=n))


def _gz(data: bytes) -> bytes:
    # Level 1: compressing was the simulator's biggest cost at level 6, and readers decompress
    # level 1 and level 6 at about the same speed.
    return gzip.compress(data, compresslevel=1, mtime=0)


def _b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _line(doc: dict) -> bytes:
    return orjson.dumps(doc) + b"\n"


def ion_value(av: dict) -> str:
    """A DynamoDB attribute value as Ion text (what an ION export holds)."""
    (kind, v), = av.items()
    if kind == "S":
        return orjson.dumps(v).decode()
    if kind == "N":
        # Ion reads 1E+3 as a float; DynamoDB numbers are decimals, written with a d exponent
        return v.replace("E", "d").replace("e", "d")
    if kind == "BOOL":
        return "true" if v else "false"
    if kind == "NULL":
        return "null"
    if kind == "B":
        return "{{" + v + "}}"
    if kind in ("SS", "NS", "BS"):
        inner = {"SS": lambda x: orjson.dumps(x).decode(), "NS": str, "BS": lambda x: "{{" + x + "}}"}[kind]
        return f"$dynamodb_{kind}::[" + ",".join(inner(x) for x in v) + "]"
    if kind == "M":
        return "{" + ",".join(f"{orjson.dumps(k).decode()}:{ion_value(x)}" for k, x in v.items()) + "}"
    return "[" + ",".join(ion_value(x) for x in v) + "]"


def _ion_line(item: dict) -> bytes:
    return ("{Item:{" + ",".join(f"{orjson.dumps(k).decode()}:{ion_value(v)}" for k, v in item.items())
            + "}}\n").encode()


def _export_id(rng: random.Random, at_us: int) -> str:
    return f"{at_us // 1000:014d}-{rng.getrandbits(32):08x}"


def _write_export(store: Store, tenant: Tenant, entity: str, rng: random.Random, at_us: int,
                  files: Iterable[tuple[list[bytes], str]], summary: dict,
                  fmt: str = "DYNAMODB_JSON") -> tuple[str, str, int, int]:
    """Write one export folder; `files` are (lines, data folder) pairs, consumed one at a time.
    Returns the export id, the summary's key, the item count and the number of data files."""
    prefix = f"tenant={tenant.tenant_id}/table={entity}"
    eid = _export_id(rng, at_us)
    base = f"{prefix}/AWSDynamoDB/{eid}"
    store.put(f"{base}/_started", b"")
    manifest_lines, total, billed = [], 0, 0
    for lines, folder in files:
        raw = b"".join(lines)
        if fmt == "ION" and raw:
            raw = b"$ion_1_0 " + raw
        body = _gz(raw)
        key = f"{folder or base + '/data'}/{_name(rng)}.{'ion' if fmt == 'ION' else 'json'}.gz"
        store.put(key, body)
        total += len(lines)
        billed += len(raw)
        manifest_lines.append(_line({
            "itemCount": len(lines), "md5Checksum": _b64md5(body),
            "etag": hashlib.md5(body).hexdigest() + "-1", "dataFileS3Key": key,
        }))
    manifest_files = b"".join(manifest_lines)
    store.put(f"{base}/manifest-files.json", manifest_files)
    store.put(f"{base}/manifest-files.checksum", hashlib.md5(manifest_files).hexdigest().encode())
    table_arn = tenant.table_arn(entity)
    doc = {
        "version": summary.pop("version"),
        "exportArn": f"{table_arn}/export/{eid}",
        "startTime": iso(at_us), "endTime": iso(at_us + rng.randrange(60, 600) * 1_000_000),
        "tableArn": table_arn,
        "tableId": "-".join(f"{rng.getrandbits(4 * n):0{n}x}" for n in (8, 4, 4, 4, 12)),
        **summary,
        "s3Bucket": "tenantlake-landing", "s3Prefix": prefix,
        "s3SseAlgorithm": "AES256", "s3SseKmsKeyId": None,
        "manifestFilesS3Key": f"{base}/manifest-files.json",
        "billedSizeBytes": billed, "itemCount": total, "outputFormat": fmt,
    }
    body = orjson.dumps(doc)
    store.put(f"{base}/manifest-summary.json", body)
    store.put(f"{base}/manifest-summary.checksum", hashlib.md5(body).hexdigest().encode())
    return eid, f"{base}/manifest-summary.json", total, len(manifest_lines)


def write_full_export(store: Store, tenant: Tenant, entity: str, items: Iterable[dict],
                      at_us: int, rng: random.Random, fmt: str = "DYNAMODB_JSON") -> ExportRecord:
    lines = [_ion_line(item) if fmt == "ION" else _line({"Item": item}) for item in items]
    # Partitions: uneven shares of the items, and always one empty partition (AWS writes a file
    # with no lines for a partition that holds nothing).
    n_files = 1 + len(lines) // ITEMS_PER_FILE
    weights = [rng.uniform(0.5, 1.5) for _ in range(n_files)]
    cuts, acc = [], 0.0
    for w in weights[:-1]:
        acc += w
        cuts.append(round(len(lines) * acc / sum(weights)))
    bounds = [0, *cuts, len(lines)]
    return write_full_export_files(store, tenant, entity, [lines[a:b] for a, b in zip(
        bounds, bounds[1:], strict=False)] + [[]], at_us, rng, fmt)


def write_full_export_files(store: Store, tenant: Tenant, entity: str, files: Iterable[list[bytes]],
                            at_us: int, rng: random.Random, fmt: str = "DYNAMODB_JSON") -> ExportRecord:
    """A full export from data files' lines, taken lazily (so a bulk export never sits in memory)."""
    eid, key, count, n_files = _write_export(store, tenant, entity, rng, at_us, (
        (lines, "") for lines in files), {
        "version": "2020-06-30", "exportTime": iso(at_us), "exportType": "FULL_EXPORT",
    }, fmt)
    return ExportRecord(tenant.tenant_id, entity, "FULL_EXPORT", eid, key, count, n_files, None, at_us)


def net_changes(changes: list[Change]) -> list[tuple[Change, dict | None]]:
    """Collapse a window's changes to one per key, in its final state, with the image it had at
    the window's start: (last change, old image). Keys created and removed inside the window
    leave nothing."""
    first: dict[str, Change] = {}
    last: dict[str, Change] = {}
    for c in changes:
        first.setdefault(c.key, c)
        last[c.key] = c
    return [(c, first[k].old) for k, c in last.items() if first[k].old is not None or c.new is not None]


def write_incremental_export(store: Store, tenant: Tenant, entity: str, changes: list[Change],
                             from_us: int, to_us: int, rng: random.Random) -> ExportRecord:
    lines = []
    for last, old in net_changes(changes):
        rec: dict = {"Metadata": {"WriteTimestampMicros": {"N": str(last.ts)}},
                     "Keys": {"id": {"S": last.key}}}
        if old is not None:
            rec["OldImage"] = old
        if last.new is not None:
            rec["NewImage"] = last.new
        lines.append(_line(rec))
    # Incremental data goes to the export's shared data folder; readers follow dataFileS3Key.
    shared = f"tenant={tenant.tenant_id}/table={entity}/AWSDynamoDB/data"
    files = [(lines, shared)] if lines else []
    eid, key, count, n_files = _write_export(store, tenant, entity, rng, to_us, files, {
        "version": "2023-08-01", "exportType": "INCREMENTAL_EXPORT",
        "exportFromTime": iso(from_us), "exportToTime": iso(to_us),
        "outputView": "NEW_AND_OLD_IMAGES",
    })
    return ExportRecord(tenant.tenant_id, entity, "INCREMENTAL_EXPORT", eid, key, count,
                        n_files, from_us, to_us)


def _event_name(c: Change) -> str:
    return "INSERT" if c.old is None else "REMOVE" if c.new is None else "MODIFY"


def write_stream_files(store: Store, tenant: Tenant, entity: str, changes: list[Change],
                       from_us: int, to_us: int, rng: random.Random,
                       seq_base: int) -> list[ExportRecord]:
    """Every change of the window as stream records, in both landed envelopes:
    EventBridge Pipes / Lambda batches ({"Records": [...]}) and Kinesis-Firehose JSON, the latter
    alternately newline-delimited and concatenated with no delimiter (Firehose's default)."""
    if not changes:
        return []
    table_arn = tenant.table_arn(entity)
    table = tenant.tables[entity]
    pipes, firehose = [], []
    for i, c in enumerate(changes):
        event_id = f"{rng.getrandbits(128):032x}"
        images = {"Keys": {"id": {"S": c.key}}}
        if c.new is not None:
            images["NewImage"] = c.new
        if c.old is not None:
            images["OldImage"] = c.old
        size = len(orjson.dumps(images))
        pipes.append({
            "eventID": event_id, "eventName": _event_name(c), "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": tenant.region,
            "eventSourceARN": f"{table_arn}/stream/2026-11-01T00:00:00.000",
            "dynamodb": {**images, "ApproximateCreationDateTime": c.ts // 1_000_000,
                         "SequenceNumber": str(seq_base + i), "SizeBytes": size,
                         "StreamViewType": "NEW_AND_OLD_IMAGES"},
        })
        firehose.append({
            "awsRegion": tenant.region, "eventID": event_id, "eventName": _event_name(c),
            "userIdentity": None, "recordFormat": "application/json", "tableName": table,
            "dynamodb": {"ApproximateCreationDateTime": c.ts // 1000, **images, "SizeBytes": size},
            "eventSource": "aws:dynamodb",
        })
    stamp = iso(to_us)[:13].replace("-", "/").replace("T", "/")  # YYYY/MM/DD/HH
    base = f"tenant={tenant.tenant_id}/table={entity}/streams"
    pipes_key = f"{base}/pipes/{stamp}/{_name(rng)}.json.gz"
    store.put(pipes_key, _gz(orjson.dumps({"Records": pipes})))
    delimiter = b"\n" if (to_us // 3_600_000_000) % 2 == 0 else b""
    fh_key = f"{base}/firehose/{stamp}/{table}-1-{iso(to_us)[:19].replace(':', '-')}-{_name(rng, 8)}.gz"
    store.put(fh_key, _gz(delimiter.join(orjson.dumps(r) for r in firehose)))
    return [
        ExportRecord(tenant.tenant_id, entity, "STREAM_PIPES", pipes_key, None, len(changes), 1,
                     from_us, to_us),
        ExportRecord(tenant.tenant_id, entity, "STREAM_FIREHOSE", fh_key, None, len(changes), 1,
                     from_us, to_us),
    ]


def record_dict(r: ExportRecord) -> dict:
    return asdict(r)
