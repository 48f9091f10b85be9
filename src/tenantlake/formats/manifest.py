"""Reading an export the way AWS describes it: summary -> manifest-files -> data files, verified.

Never lists folders for data: every data file comes from manifest-files.json's dataFileS3Key
(incremental exports share a data folder with other exports). Every check failure is an
ExportError naming the file and the problem; the whole batch stops, since a batch with a missing
or corrupt file cannot be published in part without losing rows silently.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
from isal import isal_zlib

from tenantlake.formats.rows import EPOCH
from tenantlake.registry import Tenant
from tenantlake.storage import Store


class ExportError(ValueError):
    """A batch that cannot be read as a whole; the message names the file and the problem."""


@dataclass(frozen=True)
class DataFile:
    key: str  # as listed (dataFileS3Key)
    path: str  # where it is in this store
    md5: str
    item_count: int


@dataclass
class Export:
    summary_key: str
    export_id: str
    kind: str  # FULL_EXPORT | INCREMENTAL_EXPORT
    table_arn: str
    export_time_us: int  # full: exportTime; incremental: exportToTime
    from_us: int | None
    view: str
    item_count: int
    format: str = "DYNAMODB_JSON"  # or ION (full exports only)
    billed_bytes: int | None = None  # billedSizeBytes: what the export was charged for (cost per tenant)
    files: list[DataFile] = field(default_factory=list)

    @property
    def account(self) -> str:
        return self.table_arn.split(":")[4]

    @property
    def table_name(self) -> str:
        return self.table_arn.split(":table/", 1)[1]

    @property
    def export_date(self) -> str:
        """The lake partition: the day of the snapshot, or of an incremental window's start."""
        us = self.from_us if self.from_us is not None else self.export_time_us
        return datetime.fromtimestamp(us / 1e6, UTC).date().isoformat()


def parse_time(text: str, where: str) -> int:
    """An ISO-8601 time with its zone, as epoch µs. AWS always writes the zone; one without it
    would be read in the worker's own zone, moving the batch's times and day with the machine."""
    try:
        at = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ExportError(f"{where}: {str(text)[:60]!r} is not an ISO-8601 time") from None
    if at.tzinfo is None or len(text) <= 10:  # a date alone is midnight in no zone at all
        raise ExportError(f"{where}: {text!r} has no time zone (AWS writes e.g. 2026-11-01T00:00:00.000Z)")
    return (at - EPOCH) // timedelta(microseconds=1)


def _count(value, where: str, field_name: str) -> int:
    """An item count: a whole number, as AWS writes it (int() would take 1.9 as 1, "1" as 1)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ExportError(f"{where}: {field_name} is {str(value)[:30]!r}, not a count of items")
    return value


def _text(s: dict, name: str, where: str) -> str:
    value = s.get(name)
    if not isinstance(value, str) or not value:
        raise ExportError(f"{where}: {name} is {str(value)[:60]!r}, not text")
    return value


TABLE_ARN = re.compile(r"arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table/[A-Za-z0-9_.-]{3,255}")


def export_root(summary_key: str) -> str:
    """The folder an export's files must lie in: the one holding its AWSDynamoDB/ folder (incremental
    exports share AWSDynamoDB/data/), or, for a copy of one export, the summary's own folder."""
    folder = posixpath.dirname(summary_key)
    if "AWSDynamoDB" in folder.split("/"):
        return folder.rsplit("AWSDynamoDB", 1)[0] + "AWSDynamoDB/"
    return folder + "/" if folder else ""


def _inside(path: str, root: str) -> bool:
    return path.startswith(root) and ".." not in path.split("/")


def _resolve(store: Store, key: str, summary_key: str, prefix: str) -> str:
    """Where a listed S3 key is in this store: as-is (a mirror of the bucket), or relative to the
    export's S3 prefix or its export folder (an engineer's copy of one export). Only a place inside
    the export's own folder will do: a manifest naming another tenant's file (or a file outside
    the landing) must not have it read as this tenant's."""
    if not isinstance(key, str) or not key:
        raise ExportError(f"{summary_key}: a listed key is {str(key)[:60]!r}, not an S3 key")
    folder = posixpath.dirname(summary_key)
    candidates = [key]
    if prefix and key.startswith(prefix + "/"):
        rel = key[len(prefix) + 1:]  # AWSDynamoDB/<id>/data/x.json.gz or AWSDynamoDB/data/x.json.gz
        base = folder.rsplit("AWSDynamoDB", 1)[0] if "AWSDynamoDB" in folder else ""
        candidates.append(posixpath.join(base, rel) if base else rel)
        parts = rel.split("/")
        if len(parts) >= 3:
            candidates.append(posixpath.join(folder, *parts[2:]) if parts[1] != "data"
                              else posixpath.join(folder, *parts[1:]))
    root = export_root(summary_key)
    inside = [c for c in (posixpath.normpath(c).lstrip("/") for c in candidates) if _inside(c, root)]
    if not inside:
        raise ExportError(f"{key}: listed by {summary_key}'s manifest but outside the export's folder "
                          f"({root or 'the export folder'}): an export reads only its own files")
    for c in inside:
        if store.exists(c):
            return c
    return inside[-1]


def _json(store: Store, key: str):
    try:
        return orjson.loads(store.get(key))
    except orjson.JSONDecodeError as e:
        raise ExportError(f"{key}: not valid JSON ({e})") from None


def read_export(store: Store, summary_key: str) -> Export:
    folder = posixpath.dirname(summary_key)
    if not store.exists(summary_key):
        if store.exists(posixpath.join(folder, "_started")):
            raise ExportError(f"{folder}: export not complete: only _started is present, "
                              "no manifest-summary.json yet")
        raise ExportError(f"{summary_key}: no manifest-summary.json")
    s = _json(store, summary_key)
    if not isinstance(s, dict):
        raise ExportError(f"{summary_key}: expected a JSON object")
    export = _summary(s, summary_key)
    prefix = s.get("s3Prefix") if isinstance(s.get("s3Prefix"), str) else ""
    listed_key = _text(s, "manifestFilesS3Key", summary_key)
    manifest_key = _resolve(store, listed_key, summary_key, prefix)
    if not store.exists(manifest_key):
        raise ExportError(f"{listed_key}: manifest-files.json is listed but missing")
    export.files = _data_files(store, manifest_key, summary_key, prefix)
    listed = sum(f.item_count for f in export.files)
    if listed != export.item_count:
        raise ExportError(f"{summary_key}: itemCount {export.item_count} but the manifest lists "
                          f"{listed} items")
    return export


def _summary(s: dict, summary_key: str) -> Export:
    missing = [k for k in ("exportArn", "tableArn", "manifestFilesS3Key", "itemCount") if k not in s]
    if missing:
        raise ExportError(f"{summary_key}: missing field {missing[0]}")
    fmt = s.get("outputFormat", "DYNAMODB_JSON")
    if fmt not in ("DYNAMODB_JSON", "ION"):
        raise ExportError(f"{summary_key}: unknown outputFormat {fmt!r}")
    kind = s.get("exportType", "FULL_EXPORT")
    if kind == "FULL_EXPORT":
        at, frm = parse_time(s.get("exportTime") or s.get("startTime"), summary_key), None
    elif kind == "INCREMENTAL_EXPORT":
        at = parse_time(s.get("exportToTime"), summary_key)
        frm = parse_time(s.get("exportFromTime"), summary_key)
    else:
        raise ExportError(f"{summary_key}: unknown exportType {kind!r}")
    if fmt == "ION" and kind != "FULL_EXPORT":
        raise ExportError(f"{summary_key}: ION is read for full exports only; ask for DYNAMODB_JSON")
    table_arn = _text(s, "tableArn", summary_key)
    if not TABLE_ARN.fullmatch(table_arn):
        raise ExportError(f"{summary_key}: tableArn {table_arn[:100]!r} is not a DynamoDB table ARN")
    billed = s.get("billedSizeBytes")
    return Export(summary_key, _text(s, "exportArn", summary_key).rsplit("/export/", 1)[-1], kind, table_arn,
                  at, frm, s.get("outputView", "NEW_AND_OLD_IMAGES"),
                  _count(s["itemCount"], summary_key, "itemCount"), fmt,
                  billed_bytes=int(billed) if isinstance(billed, int | float) and billed >= 0 else None)


def _data_files(store: Store, manifest_key: str, summary_key: str, prefix: str) -> list[DataFile]:
    files: dict[str, DataFile] = {}
    for n, line in enumerate(store.get(manifest_key).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{manifest_key} line {n}"
        try:
            entry = orjson.loads(line)
            key, md5, count = entry["dataFileS3Key"], entry["md5Checksum"], entry["itemCount"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as e:
            raise ExportError(f"{where}: not a manifest entry ({e})") from None
        if not isinstance(key, str) or not isinstance(md5, str):
            raise ExportError(f"{where}: dataFileS3Key and md5Checksum must be text")
        if key in files:  # read twice, its items would count twice
            raise ExportError(f"{where}: {key} is listed twice")
        files[key] = DataFile(key, _resolve(store, key, summary_key, prefix), md5, _count(count, where, "itemCount"))
    return list(files.values())


def check_tenant(export: Export, tenant: Tenant, entity: str) -> None:
    """The export must come from the tenant's own account and table (invariant 1's first guard)."""
    if export.account != tenant.aws_account_id:
        raise ExportError(f"{export.summary_key}: the export is from account {export.account}, "
                          f"not tenant {tenant.tenant_id}'s account {tenant.aws_account_id}")
    expected = tenant.tables.get(entity)
    if expected is not None and export.table_name != expected:
        raise ExportError(f"{export.summary_key}: the export is of table {export.table_name}, "
                          f"not {tenant.tenant_id}'s {entity} table {expected}")


SLICE_BYTES = 32 << 20  # decompressed text decoded at a time: memory per worker stays flat


@dataclass(frozen=True)
class Slice:
    """Whole lines of a data file. Where its newlines are is found once, here: it numbers the next
    slice's lines and is the fast decoder's line index (a second scan of 32 MiB cost ~3% of it)."""
    first_line: int
    text: bytes
    line_ends: np.ndarray  # the offset of each newline in `text`

    @staticmethod
    def of(text: bytes, first_line: int = 1) -> Slice:
        return Slice(first_line, text, line_ends(text))


def line_ends(text: bytes) -> np.ndarray:
    """The offset of each newline in `text`."""
    return np.flatnonzero(np.frombuffer(text, dtype=np.uint8) == 10)


def stream_slices(store: Store, f: DataFile) -> Iterator[Slice]:
    """The data file's decompressed text in slices cut at line ends.
    MD5 and gzip integrity are checked as the bytes stream past; a failure raises ExportError
    after the slices already yielded, which is why batches publish only once every file is read.
    Text is inflated a slice's worth at a time and each slice is copied once, when its pieces are
    joined (it is the bulk of the bytes a worker handles: re-copying it cost ~5% of a decode)."""
    if not store.exists(f.path):
        hint = " (an incremental export's data sit in the shared AWSDynamoDB/data/ folder beside the export's " \
               "folder: read the folder that holds AWSDynamoDB/)" if "/AWSDynamoDB/data/" in f"/{f.key}" else ""
        raise ExportError(f"{f.key}: listed in the manifest but missing{hint}")
    md5 = hashlib.md5()
    inflate = _Gunzip()
    parts: list[bytes] = []  # inflated text not yet yielded
    size, line, broken, seen = 0, 1, None, 0
    with store.open(f.path) as body:
        while chunk := body.read(8 << 20):
            md5.update(chunk)
            seen += len(chunk)
            if broken:
                continue  # keep hashing: a wrong MD5 explains a broken gzip better than zlib does
            data = chunk
            while True:
                try:
                    piece, data = inflate.inflate(data, SLICE_BYTES - size if size < SLICE_BYTES else SLICE_BYTES)
                except (isal_zlib.error, zlib.error) as e:
                    broken = str(e)
                    break
                if piece:
                    parts.append(piece)
                    size += len(piece)
                if size >= SLICE_BYTES:  # and the inflater may hold more output: go round again
                    text, parts = _cut_at_line_end(parts)
                    size = sum(map(len, parts))
                    if text:
                        piece = Slice.of(text, line)
                        yield piece
                        line += len(piece.line_ends)
                elif not data:
                    break
    digest = base64.b64encode(md5.digest()).decode()
    if digest != f.md5:
        raise ExportError(f"{f.key}: MD5 {digest} does not match the manifest's {f.md5}")
    if broken is None and seen and not inflate.eof:
        broken = "incomplete or truncated stream"
    if broken:
        raise ExportError(f"{f.key}: not a valid gzip file ({broken})")
    if size:
        yield Slice.of(b"".join(parts), line)


class _Gunzip:
    """Inflates gzip members one after another, with zlib's API at ISA-L's speed (2.3x zlib's)."""

    def __init__(self):
        self._z = isal_zlib.decompressobj(wbits=31)

    @property
    def eof(self) -> bool:
        return self._z.eof

    def inflate(self, data: bytes, limit: int) -> tuple[bytes, bytes]:
        """(at most `limit` bytes of text, the input left for the next call)."""
        text = self._z.decompress(data, limit)
        if self._z.eof and self._z.unused_data:  # concatenated gzip members
            rest, self._z = self._z.unused_data, isal_zlib.decompressobj(wbits=31)
            return text, rest
        return text, self._z.unconsumed_tail


def _cut_at_line_end(parts: list[bytes]) -> tuple[bytes | None, list[bytes]]:
    """(the text up to the last line end in `parts`, joined; the pieces after it), or (None, parts)
    when no line has ended yet (a line longer than a slice)."""
    for i in range(len(parts) - 1, -1, -1):
        end = parts[i].rfind(b"\n") + 1
        if end:
            return b"".join([*parts[:i], memoryview(parts[i])[:end]]), [parts[i][end:], *parts[i + 1:]]
    return None, parts
