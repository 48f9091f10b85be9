"""DynamoDB Streams records landed in S3, in either envelope, to lake rows.

  pipes     EventBridge Pipes / Lambda batches: {"Records": [...]} or a JSON array of records, one
            per file or several appended one after another (pipes_documents);
            ApproximateCreationDateTime in epoch seconds, SequenceNumber orders an item's changes.
  firehose  Kinesis Data Streams for DynamoDB via Firehose: one record per JSON object, newline
            delimited or concatenated with no delimiter; ApproximateCreationDateTime in epoch
            milliseconds (or microseconds), no SequenceNumber.

Every record becomes a row: INSERT -> insert, MODIFY -> modify, REMOVE -> remove (TTL deletes
too). A record that cannot be read is quarantined with its position as `_line` (1-based), and
reading goes on at the next line, or in a file of concatenated records at the next whole record.
A record that names another table (`tableName`, or the table in `eventSourceARN`) or another
account (`eventSourceARN`) than the tenant's is quarantined (`wrong_table`, `tenant_mismatch`): one
Kinesis stream may carry several tables. Every record DynamoDB sends names its source (Streams'
`eventSourceARN`, Kinesis' `tableName`), so one that names neither is quarantined (`unknown_source`):
whose it is cannot be checked. A UTF-8 byte order mark that a tool put at the start of a file is
not a record. An INSERT or MODIFY without a NewImage (a KEYS_ONLY or
OLD_IMAGE stream) is quarantined as `missing_image`.

A time in whole seconds (Streams, Pipes) is taken as the last microsecond of its second: the change
happened at most then, so a FULL export taken earlier in that second never wins over it (records
of one second are ordered by their SequenceNumber). In a file whose times carry fractions of a
second, a whole one is exact as well: X.0 written as X must not outrank X.25.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from datetime import timedelta

import orjson

from tenantlake.contracts import Entity
from tenantlake.formats.attributes import BadValue
from tenantlake.formats.drift import DriftTally
from tenantlake.formats.dynamodb_json import Decoded, Source, quarantine_table, same_item, stamp_rows
from tenantlake.formats.rows import EPOCH, LAST_TIME, OUT_OF_RANGE, change_row, lake_schema

OPS = {"INSERT": "insert", "MODIFY": "modify", "REMOVE": "remove"}


LAST_US = (LAST_TIME - EPOCH) // timedelta(microseconds=1)


def _micros(value, whole_seconds: bool = True) -> int:
    """ApproximateCreationDateTime as epoch microseconds, whatever unit the envelope used;
    `whole_seconds`: the file's times in seconds are known to the second only."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise BadValue("missing_timestamp", f"ApproximateCreationDateTime is {str(value)[:30]!r}")
    if value < 1e11:  # seconds (Streams, Pipes)
        if whole_seconds and float(value).is_integer():  # known to the second: its last microsecond (see above)
            return int(value) * 1_000_000 + 999_999
        return int(round(value * 1_000_000))
    if value < 1e14:  # milliseconds (Kinesis for DynamoDB)
        return int(value) * 1000
    if value > LAST_US:
        raise BadValue(OUT_OF_RANGE, f"ApproximateCreationDateTime {str(value)[:30]} is past year 9999")
    return int(value)  # microseconds (Kinesis, by configuration)


BOM = "\ufeff".encode()  # UTF-8's byte order mark


class UnreadableFile(ValueError):
    """No record can be read from the file: its bytes are at fault (a truncated gzip or Pipes batch),
    and they will not change, so it is set aside whole. Any other error is the code's, and fails the
    batch rather than quarantine a good file."""


GZIP = b"\x1f\x8b"


def stream_text(body: bytes) -> bytes:
    """A landed stream file's text: gzip (every member) or plain."""
    if body[:2] != GZIP:
        return body
    text, problem = _inflate_members(body)
    if problem:
        raise UnreadableFile(problem)
    return text


def readable_text(body: bytes) -> bytes:
    """As much of a landed file's text as inflates, up to where a truncated or broken gzip stops:
    kept in quarantine as text, where erasure finds a consumer's id (compressed bytes hide it)."""
    return _inflate_members(body)[0] if body[:2] == GZIP else body


def _inflate_members(body: bytes) -> tuple[bytes, str | None]:
    """The text of every gzip member of `body`, one after another (a writer that appends gzipped
    batches to a file, or `cat a.gz b.gz`, makes several: zlib alone stops after the first, and the
    rest was lost without a word); and what stopped it short, if anything."""
    out, pos, view = [], 0, memoryview(body)
    while pos < len(body):
        if body[pos:pos + 2] != GZIP:
            return b"".join(out), f"not a whole gzip file (bytes at {pos} after a gzip member are not gzip)"
        inflate = zlib.decompressobj(wbits=31)
        while not inflate.eof:
            chunk = view[pos:pos + (1 << 16)]
            if not chunk:
                return b"".join(out), "not a whole gzip file (it ends inside a gzip member)"
            try:
                out.append(inflate.decompress(chunk))
            except zlib.error as e:
                return b"".join(out), f"not a whole gzip file ({e})"
            pos += len(chunk) - len(inflate.unused_data)
    return b"".join(out), None


def split_records(text: bytes, envelope: str) -> list[tuple[bytes, object]]:
    """The file's records as (raw bytes, parsed record or the error that costs it its place)."""
    text = text.removeprefix(BOM)
    if not text.strip():
        return []  # an empty file holds no records, whichever the envelope
    if envelope == "pipes":
        documents = pipes_documents(text)
        if len(documents) == 1:  # one batch, as Pipes writes it: where it does not read, no record does
            _, doc = documents[0]
            if isinstance(doc, Exception):
                raise UnreadableFile(f"not JSON ({doc})")
            if records_of(doc) is None and not _is_record(doc):
                raise UnreadableFile('expected {"Records": [...]} or a JSON array of records')
        return [entry for raw, doc in documents for entry in pipes_entries(raw, doc)]
    # A byte that is not UTF-8 (a file cut inside a character) costs only its record (_record_bytes).
    out, decoder, pos, s = [], json.JSONDecoder(), 0, text.decode("utf-8", "surrogateescape")
    while True:
        while pos < len(s) and s[pos] in " \t\r\n":
            pos += 1
        if pos >= len(s):
            return out
        try:
            record, end = decoder.raw_decode(s, pos)
        except UNREADABLE_JSON as e:
            end = _next_record(s, pos, decoder)
            out.append((_record_bytes(s[pos:end].rstrip("\r\n"))[0], e))  # whole, as sent
            pos = end
            continue
        sent = s[pos:end]
        if not isinstance(record, dict):  # a record is an object: a piece (a cut record's tail may start
            end = _next_record(s, pos, decoder)  # `3", "`) is set aside whole, up to the next record
            sent = s[pos:end].rstrip("\r\n")
        raw, utf8 = _record_bytes(sent)
        if not utf8:
            record = UnicodeError("the record's bytes are not UTF-8")
        elif _lone_surrogate(sent, record):
            record = LONE_SURROGATE
        out.append((raw, record))
        pos = end


# What reading one JSON value can raise: not JSON (JSONDecodeError is a ValueError), an integer
# past Python's 4,300 digits (ValueError), nested past Python's stack (RecursionError).
UNREADABLE_JSON = (ValueError, RecursionError)
LONE_SURROGATE = ValueError("a \\u escape names half a UTF-16 surrogate pair: no UTF-8 text holds it")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _lone_surrogate(sent: str, record) -> bool:
    """Whether the record holds a string no UTF-8 text can (a lone surrogate, sent as a \\u escape).
    Python's parser reads one where orjson refuses it; its values could then not be written."""
    if not _SURROGATE_ESCAPE.search(sent):  # a pair (an emoji) matches too: the encode below decides
        return False
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def pipes_documents(text: bytes) -> list[tuple[bytes, object]]:
    """A Pipes file's JSON documents as (bytes as sent, the document or the error that costs it its
    place). A file is one batch ({"Records": [...]} or a JSON array of records), or batches appended
    one after another (a line each, or back to back) by a writer that adds each batch it receives.
    orjson reads the usual one; otherwise Python's parser reads them one by one, so that a lone
    surrogate costs only its record and a broken batch only itself, up to the next that reads."""
    try:
        return [(text, orjson.loads(text))]
    except orjson.JSONDecodeError as e:
        first_error = e
    try:
        s = text.decode("utf-8")
    except UnicodeDecodeError:  # a batch cut inside a character: which records it held is unknowable
        return [(text, first_error)]
    out, decoder, pos = [], json.JSONDecoder(), _SPACE.match(s, 0).end()
    while pos < len(s):
        try:
            doc, end = decoder.raw_decode(s, pos)
        except UNREADABLE_JSON as e:
            doc, end = e, _next_document(s, pos, decoder)
        out.append((s[pos:end].rstrip().encode("utf-8"), doc))
        pos = _SPACE.match(s, end).end()
    return out or [(text, first_error)]


def _next_document(s: str, pos: int, decoder: json.JSONDecoder) -> int:
    """Where reading can go on after the broken document at `pos`: the next line from which a batch
    or a record reads, or the end of the text."""
    newline = s.find("\n", pos)
    while newline >= 0:
        at = _SPACE.match(s, newline + 1).end()
        try:
            doc, _ = decoder.raw_decode(s, at)
            if records_of(doc) is not None or _is_record(doc):
                return at
        except UNREADABLE_JSON:
            pass
        newline = s.find("\n", newline + 1)
    return len(s)


def records_of(doc) -> list | None:
    """A batch's records: {"Records": [...]} or a JSON array; None if `doc` is no batch."""
    records = doc.get("Records") if isinstance(doc, dict) else doc
    return records if isinstance(records, list) else None


def pipes_entries(raw: bytes, doc) -> list[tuple[bytes, object]]:
    """One document's records as split_records gives them: a batch's records, or the document as one
    record (a record written alone, or something else, which decode_stream then sets aside)."""
    records = records_of(doc)
    if records is None:
        return [(raw, doc)]
    return [_pipes_record(r) for r in records]


_SPACE = re.compile(r"[ \t\r\n]*")


def sent_records(text: bytes, envelope: str, records: list[tuple[bytes, object]] | None = None) -> list[bytes]:
    """Each record of the file as it was sent: a Firehose record's bytes as split_records finds
    them, a Pipes record's bytes inside its batch (split_records holds orjson's writing of it,
    which changes number forms, escapes and spacing). Asked only for records set aside; `records`:
    split_records' answer, when the caller has it already."""
    if envelope == "pipes":
        sent = []
        for raw, doc in pipes_documents(text.removeprefix(BOM)):
            entries = pipes_entries(raw, doc)
            spans = _pipes_spans(raw) if records_of(doc) is not None else [raw]
            sent += spans if spans is not None and len(spans) == len(entries) else [r for r, _ in entries]
        return sent
    records = split_records(text, envelope) if records is None else records
    return [raw for raw, _ in records]


def _pipes_spans(text: bytes) -> list[bytes] | None:
    """The bytes of each element of a Pipes batch's records array, or None where the batch is not
    laid out as one (a key twice, say): then its records stand as orjson writes them."""
    s, decoder = text.decode("utf-8", "surrogateescape"), json.JSONDecoder()

    def skip(at: int, char: str = "") -> int:
        at = _SPACE.match(s, at).end()
        if char:
            if not s.startswith(char, at):
                raise ValueError(f"expected {char!r} at {at}")
            at = _SPACE.match(s, at + 1).end()
        return at

    try:
        pos = skip(0)
        if s.startswith("{", pos):  # {"Records": [...], ...}: find the array, skipping other members
            pos = skip(pos, "{")
            while True:
                key, pos = decoder.raw_decode(s, pos)
                pos = skip(pos, ":")
                if key == "Records":
                    break
                _, pos = decoder.raw_decode(s, pos)
                pos = skip(pos, ",")
        pos = skip(pos, "[")
        spans = []
        while not s.startswith("]", pos):
            start = pos
            _, pos = decoder.raw_decode(s, pos)
            spans.append(s[start:pos].encode("utf-8", "surrogateescape"))
            pos = skip(pos)
            if not s.startswith("]", pos):
                pos = skip(pos, ",")
        return spans
    except (*UNREADABLE_JSON, IndexError):
        return None


def json_bytes(doc) -> bytes:
    """`doc` as JSON; one orjson cannot write (an integer past 64 bits, a lone surrogate) in ASCII,
    every character escaped, none lost."""
    try:
        return orjson.dumps(doc)
    except orjson.JSONEncodeError:
        return json.dumps(doc).encode()


def _pipes_record(record) -> tuple[bytes, object]:
    raw = json_bytes(record)
    return raw, LONE_SURROGATE if raw.isascii() and _lone_surrogate(raw.decode(), record) else record


def _record_bytes(text: str) -> tuple[bytes, bool]:
    """A record's bytes as sent, and whether they are UTF-8 (the text was decoded with
    surrogateescape: a byte that is not UTF-8 comes back as itself)."""
    try:
        return text.encode("utf-8"), True
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape"), False


_RESTART = re.compile(r"[\n{]")


def _next_record(s: str, pos: int, decoder: json.JSONDecoder) -> int:
    """Where reading can go on after the unreadable record at `pos`: the next line (a raw newline
    is never inside a JSON string), or the next `{` from which a whole stream record reads, or the
    end of the text."""
    for m in _RESTART.finditer(s, pos + 1):
        at = m.start()
        if s[at] == "\n":
            return at + 1
        try:
            record, _ = decoder.raw_decode(s, at)
        except UNREADABLE_JSON:
            continue
        if _is_record(record):
            return at
    return len(s)


def _is_record(doc) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("eventName"), str) and isinstance(doc.get("dynamodb"), dict)


def _check_source(rec: dict, table_arn: str) -> None:
    """The record must come from the tenant's table, in the tenant's account, where it says."""
    account, table = table_arn.split(":")[4], table_arn.split(":table/", 1)[1]
    name, arn = rec.get("tableName"), rec.get("eventSourceARN")
    if name is None and arn is None:
        raise BadValue("unknown_source", "the record names neither its table (tableName) nor its stream "
                                         "(eventSourceARN), so whose it is cannot be checked")
    if name is not None and name != table:
        raise BadValue("wrong_table", f"the record is of table {str(name)[:80]!r}, not {table!r}")
    if arn is None:
        return
    parts = str(arn).split(":", 5)
    if len(parts) < 6 or not parts[5].startswith("table/"):
        raise BadValue("not_a_stream_record", f"eventSourceARN {str(arn)[:120]!r} names no table")
    if parts[4] != account:
        raise BadValue("tenant_mismatch", f"the record comes from account {parts[4]!r}, not the tenant's {account!r}")
    if parts[5].split("/")[1] != table:
        raise BadValue("wrong_table", f"the record is of table {parts[5].split('/')[1][:80]!r}, not {table!r}")


def _iso(us: int) -> str:
    return (EPOCH + timedelta(microseconds=us)).isoformat()


def _sub_second(records: list[tuple[bytes, object]]) -> bool:
    """Whether the file sends times in seconds with fractions: then a whole one is exact too (a
    writer prints 1764000100.0 as 1764000100), not a time known only to its second."""
    for _, rec in records:
        body = rec.get("dynamodb") if isinstance(rec, dict) else None
        t = body.get("ApproximateCreationDateTime") if isinstance(body, dict) else None
        if isinstance(t, float) and math.isfinite(t) and 0 < t < 1e11 and not t.is_integer():
            return True
    return False


def _first_delivery(rec: dict, n: int, delivered: dict[str, int]) -> None:
    """Kinesis and Lambda deliver at least once: a record whose eventID came before in the file is
    that change again, and would rank as a later one (a Firehose record has no SequenceNumber)."""
    event_id = rec.get("eventID")
    if isinstance(event_id, str) and event_id:
        if event_id in delivered:
            raise BadValue("duplicate_delivery", f"eventID {event_id[:64]!r} came before, as record "
                                                 f"{delivered[event_id]}: the same change, delivered again")
        delivered[event_id] = n


def decode_stream(text: bytes, entity: Entity | None, src: Source, envelope: str,
                  table_arn: str | None = None, not_after_us: int | None = None) -> Decoded:
    """The file's records as rows; with `table_arn` (the tenant's table), records of any other
    table or account are quarantined, and with `not_after_us`, records stamped after it
    (`timestamp_in_future`: latest-wins would let such a change outrank every real one of its item)."""
    rows, bad, tally = [], [], DriftTally()
    records = split_records(text, envelope)
    whole_seconds = not _sub_second(records)
    delivered: dict[str, int] = {}  # eventID -> the record that brought it
    for n, (raw, rec) in enumerate(records, 1):
        try:
            if isinstance(rec, UnicodeError):
                raise BadValue("invalid_utf8", str(rec))
            if isinstance(rec, RecursionError):
                raise BadValue("nesting_too_deep", "nested too deeply to read")
            if isinstance(rec, Exception):
                raise BadValue("malformed_json", f"not valid JSON: {rec}")
            if not isinstance(rec, dict) or not isinstance(rec.get("dynamodb"), dict):
                raise BadValue("not_a_stream_record", "a record has eventName and dynamodb")
            op = OPS.get(rec.get("eventName"))
            if op is None:
                raise BadValue("not_a_stream_record", f"eventName {str(rec.get('eventName'))[:20]!r}")
            if table_arn is not None:
                _check_source(rec, table_arn)
            _first_delivery(rec, n, delivered)
            body = rec["dynamodb"]
            if op != "remove" and not isinstance(body.get("NewImage"), dict):
                view = body.get("StreamViewType")
                raise BadValue("missing_image", f"{rec['eventName']} without NewImage: the stream must send "
                                                f"new images (NEW_IMAGE or NEW_AND_OLD_IMAGES)"
                                                + (f", not {str(view)[:20]}" if view else ""))
            image = body.get("OldImage") if op == "remove" else body.get("NewImage")
            row, drift = change_row(entity, image, body.get("Keys"), src.tenant_id, remove=op == "remove")
            if entity is not None and op != "remove" and body.get("OldImage") is not None:
                same_item(entity, body["OldImage"], body.get("Keys"))
            seq = body.get("SequenceNumber")
            if seq is not None and not (isinstance(seq, str) and seq.isdigit() and len(seq) <= 40):
                raise BadValue("not_a_stream_record", f"SequenceNumber {str(seq)[:45]!r}")
            at = _micros(body.get("ApproximateCreationDateTime"), whole_seconds)
            if not_after_us is not None and at > not_after_us:
                raise BadValue("timestamp_in_future", f"ApproximateCreationDateTime is {_iso(at)}, after "
                                                      f"{_iso(not_after_us)}: a clock or a unit is wrong")
            row.update(_op=op, _event_ts=at, _sequence=seq.zfill(40) if seq else None, _line=n)
        except BadValue as e:
            bad.append((n, e.code, e.detail, raw))
            continue
        rows.append(row)
        tally.add_row(drift, row["_event_ts"])
    if bad and envelope == "pipes":  # set aside as sent, not as orjson writes them
        sent = sent_records(text, envelope, records)
        bad = [(n, code, detail, sent[n - 1]) for n, code, detail, _ in bad]
    table = stamp_rows(rows, src, lake_schema(entity))
    return Decoded(table, quarantine_table(src, bad), len(records), tally.result())


UNREADABLE_FILE = "unreadable_file"


def unreadable_file(entity: Entity | None, src: Source, text: bytes, problem: str) -> Decoded:
    """A landed file no record can be read from (a truncated gzip or Pipes batch), set aside whole as
    one quarantine row holding what of its text could be read (the file stays in the landing): its
    bytes will not change, so failing it again every run would only hold back the table's later files."""
    whole = quarantine_table(src, [(1, UNREADABLE_FILE, problem, text)])
    return Decoded(stamp_rows([], src, lake_schema(entity)), whole, 1, [])  # one item: the file, set aside
