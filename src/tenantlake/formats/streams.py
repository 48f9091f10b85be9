"""DynamoDB Streams records landed in S3, in either envelope, to lake rows.

  pipes     EventBridge Pipes / Lambda batches: {"Records": [...]} or a JSON array of records;
            ApproximateCreationDateTime in epoch seconds, SequenceNumber orders an item's changes.
  firehose  Kinesis Data Streams for DynamoDB via Firehose: one record per JSON object, newline
            delimited or concatenated with no delimiter; ApproximateCreationDateTime in epoch
            milliseconds (or microseconds), no SequenceNumber.

Every record becomes a row: INSERT -> insert, MODIFY -> modify, REMOVE -> remove (TTL deletes
too). A record that cannot be read is quarantined with its position as `_line` (1-based).
"""

from __future__ import annotations

import json

import orjson

from tenantlake.contracts import Entity
from tenantlake.formats.attributes import BadValue
from tenantlake.formats.drift import DriftTally
from tenantlake.formats.dynamodb_json import Decoded, Source, quarantine_table, stamp_rows
from tenantlake.formats.rows import change_row, lake_schema

OPS = {"INSERT": "insert", "MODIFY": "modify", "REMOVE": "remove"}


def _micros(value) -> int:
    """ApproximateCreationDateTime as epoch microseconds, whatever unit the envelope used."""
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise BadValue("missing_timestamp", f"ApproximateCreationDateTime is {str(value)[:30]!r}")
    if value < 1e11:  # seconds (Streams, Pipes)
        return int(round(value * 1_000_000))
    if value < 1e14:  # milliseconds (Kinesis for DynamoDB)
        return int(value) * 1000
    return int(value)  # microseconds (Kinesis, by configuration)


def split_records(text: bytes, envelope: str) -> list[tuple[bytes, object]]:
    """The file's records as (raw bytes, parsed record or the parse error)."""
    if envelope == "pipes":
        doc = orjson.loads(text)  # a broken batch file is a batch error: the caller names the file
        records = doc.get("Records") if isinstance(doc, dict) else doc
        if not isinstance(records, list):
            raise ValueError('expected {"Records": [...]} or a JSON array of records')
        return [(orjson.dumps(r), r) for r in records]
    out, decoder, pos, s = [], json.JSONDecoder(), 0, text.decode("utf-8")
    while True:
        while pos < len(s) and s[pos] in " \t\r\n":
            pos += 1
        if pos >= len(s):
            return out
        try:
            record, end = decoder.raw_decode(s, pos)
        except json.JSONDecodeError as e:
            out.append((s[pos:].encode()[:10_000], e))  # the rest cannot be delimited
            return out
        out.append((s[pos:end].encode(), record))
        pos = end


def decode_stream(text: bytes, entity: Entity | None, src: Source, envelope: str) -> Decoded:
    rows, bad, tally = [], [], DriftTally()
    records = split_records(text, envelope)
    for n, (raw, rec) in enumerate(records, 1):
        try:
            if isinstance(rec, Exception):
                raise BadValue("malformed_json", f"not valid JSON: {rec}")
            if not isinstance(rec, dict) or not isinstance(rec.get("dynamodb"), dict):
                raise BadValue("not_a_stream_record", "a record has eventName and dynamodb")
            op = OPS.get(rec.get("eventName"))
            if op is None:
                raise BadValue("not_a_stream_record", f"eventName {str(rec.get('eventName'))[:20]!r}")
            body = rec["dynamodb"]
            image = body.get("OldImage") if op == "remove" else body.get("NewImage")
            row, drift = change_row(entity, image, body.get("Keys"), src.tenant_id, remove=op == "remove")
            seq = body.get("SequenceNumber")
            if seq is not None and not (isinstance(seq, str) and seq.isdigit() and len(seq) <= 40):
                raise BadValue("not_a_stream_record", f"SequenceNumber {str(seq)[:45]!r}")
            row.update(_op=op, _event_ts=_micros(body.get("ApproximateCreationDateTime")),
                       _sequence=seq.zfill(40) if seq else None, _line=n)
        except BadValue as e:
            bad.append((n, e.code, e.detail, raw))
            continue
        rows.append(row)
        tally.add_row(drift, row["_event_ts"])
    table = stamp_rows(rows, src, lake_schema(entity))
    return Decoded(table, quarantine_table(src, bad), len(records), tally.result())
