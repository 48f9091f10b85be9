"""ION full exports: each line one Ion struct {Item:{...}}, turned into DynamoDB JSON's typed
values so the same precise row path (and the same reason codes) apply.

N arrives as an Ion decimal or int, B as a blob, and sets as lists annotated $dynamodb_SS / NS / BS.
"""

from __future__ import annotations

import base64

from amazon.ion import simpleion
from amazon.ion.core import IonType

from tenantlake.contracts import Entity
from tenantlake.formats.attributes import BadValue
from tenantlake.formats.drift import DriftTally
from tenantlake.formats.dynamodb_json import Decoded, Source, quarantine_table, stamp_rows
from tenantlake.formats.rows import image_row, lake_schema

SETS = {"$dynamodb_SS": "SS", "$dynamodb_NS": "NS", "$dynamodb_BS": "BS"}


def typed(v) -> dict:
    """An Ion value as a DynamoDB attribute value."""
    t = v.ion_type
    if t is IonType.NULL or getattr(v, "is_null", False) and t is not IonType.STRUCT:
        return {"NULL": True}
    if t is IonType.BOOL:
        return {"BOOL": bool(v)}
    if t in (IonType.INT, IonType.DECIMAL):
        return {"N": str(v)}
    if t is IonType.STRING:
        return {"S": str(v)}
    if t is IonType.SYMBOL:  # its text (str() of a symbol is its repr)
        return {"S": v.text}
    if t is IonType.BLOB:
        return {"B": base64.b64encode(bytes(v)).decode()}
    if t is IonType.LIST:
        notes = [a.text for a in v.ion_annotations]
        kind = SETS.get(notes[0]) if notes else None
        if kind == "SS":
            return {"SS": [str(x) for x in v]}
        if kind == "NS":
            return {"NS": [str(x) for x in v]}
        if kind == "BS":
            return {"BS": [base64.b64encode(bytes(x)).decode() for x in v]}
        return {"L": [typed(x) for x in v]}
    if t is IonType.STRUCT:
        return {"M": {k: typed(x) for k, x in v.items()}}
    raise BadValue("unknown_type", f"Ion {t.name.lower()} has no DynamoDB type")


def _values(line: bytes) -> list:
    """The Ion values of one line. The C reader holds one string or blob in a buffer of 16 KiB unless
    told more, and failed a valid item holding a longer one: no value is longer than its line."""
    return simpleion.loads(line.decode("utf-8"), single_value=False, text_buffer_size_limit=max(1 << 14, len(line) + 1))


def _ion_line(raw: bytes) -> bytes:
    line = raw.strip()
    return line[len(b"$ion_1_0"):].strip() if line.startswith(b"$ion_1_0") else line


def ion_item(raw: bytes) -> dict | None:
    """The item of one ION export line as DynamoDB JSON typed values, or None when the line is not
    one that reads (whose item a quarantined line is, and erasure, read it this way)."""
    try:
        values = _values(_ion_line(raw))
        item = values[0]["Item"] if len(values) == 1 and values[0].ion_type is IonType.STRUCT else None
        return {k: typed(x) for k, x in item.items()} if item is not None and item.ion_type is IonType.STRUCT \
            else None
    except Exception:  # noqa: BLE001 - the Ion parser raises bare exceptions of many kinds
        return None


def decode_ion(text: bytes, entity: Entity | None, src: Source, first_line: int = 1) -> Decoded:
    rows, bad, lines, tally = [], [], 0, DriftTally()
    for n, raw in enumerate(text.split(b"\n"), first_line):
        line = _ion_line(raw)
        if not line:
            continue
        lines += 1
        try:
            values = _values(line)
        except UnicodeDecodeError as e:
            bad.append((n, "invalid_utf8", f"invalid UTF-8 at byte {e.start}", raw))
            continue
        except Exception as e:  # noqa: BLE001 - the Ion parser raises bare exceptions of many kinds
            bad.append((n, "malformed_ion", f"not valid Ion: {str(e)[:120]}", raw))
            continue
        try:
            if len(values) != 1 or values[0].ion_type is not IonType.STRUCT or set(values[0]) != {"Item"}:
                raise BadValue("not_an_export_line", "an ION full-export line is {Item:{...}}")
            item = values[0]["Item"]
            if item.ion_type is not IonType.STRUCT:
                raise BadValue("not_an_item", "Item must be an Ion struct")
            row, drift = image_row(entity, {k: typed(x) for k, x in item.items()}, None, src.tenant_id)
        except BadValue as e:
            bad.append((n, e.code, e.detail, raw))
            continue
        row.update(_op="snapshot", _event_ts=src.export_time_us, _sequence=None, _line=n)
        rows.append(row)
        tally.add_row(drift, src.export_time_us)
    return Decoded(stamp_rows(rows, src, lake_schema(entity)), quarantine_table(src, bad), lines, tally.result())
