"""DynamoDB JSON export files (full and incremental) to typed Arrow tables.

Two paths, one result. The fast path hands the whole file to pyarrow's JSON parser with an
explicit schema built from the contract (each attribute a struct of its allowed type keys), then
unwraps and casts column by column. Anything it cannot take in bulk sends the file, or just the
offending values, to the precise path (`rows.image_row`, one line at a time), which names a reason
for every row it refuses. So speed never decides what lands where: both paths give the same rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from tenantlake.contracts import SHAPES, Entity
from tenantlake.formats.attributes import NUMBER, BadValue, number
from tenantlake.formats.rows import (
    QUARANTINE_SCHEMA,
    TYPE_KEY,
    _date,
    _fit_decimal,
    _timestamp,
    image_row,
    integer,
    lake_schema,
)

SCALAR = {"S": pa.string(), "N": pa.string(), "BOOL": pa.bool_(), "SS": pa.list_(pa.string())}
N_PATTERN = f"^(?:{NUMBER.pattern})$"


@dataclass(frozen=True)
class Source:
    """Where a file's rows come from; stamped on every row."""

    tenant_id: str
    export_id: str
    source_file: str
    kind: str  # FULL_EXPORT | INCREMENTAL_EXPORT
    export_time_us: int  # a snapshot row's event time
    view: str = "NEW_AND_OLD_IMAGES"


@dataclass
class Decoded:
    rows: pa.Table
    quarantine: pa.Table
    lines: int  # item lines read (blank lines are not items)


class _NotBulk(Exception):
    """The fast path cannot take this file as a whole."""


# ---- the precise path -------------------------------------------------------------------------

def _line_row(entity: Entity | None, doc, src: Source) -> dict:
    if not isinstance(doc, dict):
        raise BadValue("not_an_export_line", "a line must be a JSON object")
    if src.kind == "FULL_EXPORT":
        if set(doc) != {"Item"}:
            raise BadValue("not_an_export_line", "a full-export line is {\"Item\": {...}}")
        row = image_row(entity, doc["Item"], None, src.tenant_id)
        return {**row, "_op": "snapshot", "_event_ts": src.export_time_us}
    unknown = set(doc) - {"Metadata", "Keys", "OldImage", "NewImage"}
    if unknown or "Keys" not in doc:
        raise BadValue("not_an_export_line", "an incremental line has Metadata, Keys, OldImage, NewImage")
    ts = (doc.get("Metadata") or {}).get("WriteTimestampMicros")
    ts = ts.get("N") if isinstance(ts, dict) else ts  # typed in the readings seen; bare accepted
    try:
        ts = int(ts)
    except (TypeError, ValueError):
        raise BadValue("missing_timestamp", f"WriteTimestampMicros is {str(ts)[:30]!r}") from None
    old, new = doc.get("OldImage"), doc.get("NewImage")
    image = new if new is not None else old
    row = image_row(entity, image, doc["Keys"], src.tenant_id)
    return {**row, "_op": _op(old is not None, new is not None, src.view), "_event_ts": ts}


def _op(has_old: bool, has_new: bool, view: str) -> str:
    if not has_new:
        return "remove"
    # A NEW_IMAGE export cannot tell an insert from an update; both are upserts downstream.
    return "modify" if has_old or view == "NEW_IMAGE" else "insert"


def stamp_rows(rows: list[dict], src: Source, schema: pa.Schema) -> pa.Table:
    for r in rows:
        r["tenant_id"], r["_export_id"], r["_source_file"] = src.tenant_id, src.export_id, src.source_file
    return pa.Table.from_pylist(rows, schema=schema)  # _event_ts: epoch microseconds


def quarantine_table(src: Source, bad: list[tuple[int, str, str, bytes]]) -> pa.Table:
    return pa.Table.from_pydict({
        "tenant_id": [src.tenant_id] * len(bad), "_export_id": [src.export_id] * len(bad),
        "_source_file": [src.source_file] * len(bad), "_line": [b[0] for b in bad],
        "_reason": [b[1] for b in bad], "_detail": [b[2] for b in bad], "_raw": [b[3] for b in bad],
    }, schema=QUARANTINE_SCHEMA)


def decode_precise(text: bytes, entity: Entity | None, src: Source, first_line: int = 1) -> Decoded:
    rows, bad, lines = [], [], 0
    for n, raw in enumerate(text.split(b"\n"), first_line):
        line = raw.rstrip(b"\r")
        if not line.strip():
            continue
        lines += 1
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as e:
            bad.append((n, "invalid_utf8", f"invalid UTF-8 at byte {e.start}", raw))
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            bad.append((n, "malformed_json", f"not valid JSON: {e}", raw))
            continue
        try:
            row = _line_row(entity, doc, src)
        except BadValue as e:
            bad.append((n, e.code, str(e.detail), raw))
            continue
        row["_line"] = n
        row.setdefault("_sequence", None)
        rows.append(row)
    return Decoded(stamp_rows(rows, src, lake_schema(entity)), quarantine_table(src, bad), lines)


# ---- the fast path ----------------------------------------------------------------------------

def _wrapper(t: pa.DataType, kind: str | None = None) -> pa.DataType:
    """The typed-attribute struct pyarrow parses one value into: {<type key>: ..., NULL: bool}."""
    if kind is not None and kind not in SHAPES:
        key = TYPE_KEY[kind]
        if key is None:
            raise _NotBulk("the contract keeps an attribute as JSON text")
        return pa.struct([(key, SCALAR[key]), ("NULL", pa.bool_())])
    if pa.types.is_struct(t):
        return pa.struct([("M", pa.struct([(f.name, _wrapper(f.type)) for f in t])), ("NULL", pa.bool_())])
    if pa.types.is_list(t):
        return pa.struct([("L", pa.list_(_wrapper(t.value_type))), ("NULL", pa.bool_())])
    key = "N" if pa.types.is_decimal(t) else "S"
    return pa.struct([(key, SCALAR[key]), ("NULL", pa.bool_())])


def _item_struct(entity: Entity) -> pa.StructType:
    return pa.struct([(a.name, _wrapper(a.arrow_type, a.kind)) for a in entity.attributes])


def parse_schema(entity: Entity, kind: str) -> pa.Schema:
    item = _item_struct(entity)
    if kind == "FULL_EXPORT":
        return pa.schema([("Item", item)])
    return pa.schema([
        ("Metadata", pa.struct([("WriteTimestampMicros", pa.struct([("N", pa.string())]))])),
        ("Keys", pa.struct([("id", pa.struct([("S", pa.string())]))])),
        ("OldImage", item), ("NewImage", item),
    ])


class _Problems:
    """Row-level refusals found while unwrapping columns: row index -> the first reason."""

    def __init__(self):
        self.by_row: dict[int, BadValue] = {}

    def add(self, row: int, e: BadValue) -> None:
        self.by_row.setdefault(row, e)

    def flag(self, mask: pa.Array, rows: pa.Array | None, code: str, detail: str) -> None:
        if pc.any(mask).as_py():
            for i in pc.indices_nonzero(mask).to_pylist():
                self.add(i if rows is None else rows[i].as_py(), BadValue(code, detail))


def _cast(values: pa.Array, t: pa.DataType, one: Callable, rows, problems: _Problems, name: str,
          numeric: bool = False) -> pa.Array:
    """Cast in bulk; if that fails, value by value through the precise converter `one`."""
    if numeric:
        clean = pc.and_kleene(pc.match_substring_regex(values, N_PATTERN), pc.less_equal(
            pc.utf8_length(values), 40))
    if not numeric or pc.all(pc.fill_null(clean, True)).as_py():
        try:
            return pc.cast(values, t)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    out = []
    for i, v in enumerate(values.to_pylist()):
        try:
            out.append(None if v is None else one(v))
        except BadValue as e:
            row = i if rows is None else rows[i].as_py()
            problems.add(row, BadValue(e.code, f"attribute {name!r}: {e.detail}"))
            out.append(None)
    return pa.array(out, type=t)


def _int(text: str) -> int:
    return integer(number(text))


def _unwrap(w: pa.StructArray, t: pa.DataType, kind: str | None, name: str, rows,
            problems: _Problems) -> pa.Array:
    """A typed-attribute struct column to the contract's column (nulls where absent or NULL)."""
    keys = [w.type.field(i).name for i in range(w.type.num_fields)]
    children = {k: pc.struct_field(w, k) for k in keys}
    present = [pc.is_valid(c) for c in children.values()]
    problems.flag(pc.and_(present[0], present[1]), rows, "two_type_keys",
                  f"attribute {name!r}: one type key expected, got {' and '.join(keys)}")
    problems.flag(pc.and_(pc.is_valid(w), pc.invert(pc.or_(present[0], present[1]))), rows,
                  "not_an_attribute_value", f"attribute {name!r}: no type key")
    problems.flag(pc.equal(pc.fill_null(children["NULL"], True), False), rows, "type_mismatch",
                  f"attribute {name!r}: NULL must be true")
    key = keys[0]
    v = children[key]
    if key == "M":
        fields = [_unwrap(pc.struct_field(v, f.name), f.type, None, f"{name}.{f.name}", rows, problems)
                  for f in t]
        return pa.StructArray.from_arrays(fields, fields=list(t), mask=pc.is_null(v))
    if key == "L":
        flat = v.values if v.offset == 0 else pc.list_flatten(v)
        parents = pc.list_parent_indices(v)
        parents = pc.take(rows, parents) if rows is not None else parents
        inner = _unwrap(flat, t.value_type, None, name, parents, problems)
        return pa.ListArray.from_arrays(v.offsets, inner, type=t, mask=pc.is_null(v))
    if key == "SS":
        lengths = pc.list_value_length(v)
        problems.flag(pc.equal(pc.fill_null(lengths, 1), 0), rows, "empty_set",
                      f"attribute {name!r}: SS is empty; DynamoDB sets hold at least one element")
        if pc.any(pc.greater(lengths, 1)).as_py():
            pairs = pa.table({"r": pc.list_parent_indices(v), "v": pc.list_flatten(v)})
            if pairs.group_by(["r", "v"]).aggregate([]).num_rows != pairs.num_rows:
                for i, vals in enumerate(v.to_pylist()):
                    if vals and len(set(vals)) != len(vals):
                        problems.add(i if rows is None else rows[i].as_py(), BadValue(
                            "duplicate_in_set", f"attribute {name!r}: SS holds a duplicate element"))
        return v
    return _scalar(v, t, kind, name, rows, problems)


def _scalar(v: pa.Array, t: pa.DataType, kind: str | None, name: str, rows, problems: _Problems):
    if kind in ("string", "bool") or kind is None and pa.types.is_string(t):
        return v
    if pa.types.is_decimal(t):
        return _cast(v, t, lambda s: _fit_decimal(number(s), t), rows, problems, name, True)
    if kind == "int":
        return _cast(v, t, _int, rows, problems, name, True)
    if kind == "epoch_ms":
        return pc.cast(_cast(v, pa.int64(), _int, rows, problems, name, True), t)
    if kind == "timestamp":
        return _cast(v, t, _timestamp, rows, problems, name)
    if kind == "date":
        return _cast(v, t, _date, rows, problems, name)
    raise AssertionError((name, kind, t))


def decode_fast(text: bytes, entity: Entity, src: Source, threads: bool = True,
                first_line: int = 1) -> Decoded:
    if b"\r" in text or b"\n\n" in text or text.startswith(b"\n") or not text.endswith(b"\n"):
        raise _NotBulk("blank lines, CRLF or a missing final newline: line numbers need the precise path")
    try:
        text.decode("utf-8")  # pyarrow's parser lets invalid UTF-8 through into string columns
    except UnicodeDecodeError:
        raise _NotBulk("invalid UTF-8") from None
    schema = parse_schema(entity, src.kind)
    try:
        parsed = pj.read_json(pa.BufferReader(text), read_options=pj.ReadOptions(use_threads=threads,
                                                                                block_size=4 << 20),
                              parse_options=pj.ParseOptions(explicit_schema=schema,
                                                            unexpected_field_behavior="error"))
    except pa.ArrowInvalid as e:
        raise _NotBulk(str(e)) from None
    n = parsed.num_rows
    problems = _Problems()
    if src.kind == "FULL_EXPORT":
        image = parsed.column("Item").combine_chunks()
        problems.flag(pc.is_null(image), None, "not_an_export_line",
                      "a full-export line is {\"Item\": {...}}")
        ops = pa.repeat("snapshot", n)
        event_ts = pa.repeat(pa.scalar(src.export_time_us, pa.int64()), n)
        key_ids = None
    else:
        old = parsed.column("OldImage").combine_chunks()
        new = parsed.column("NewImage").combine_chunks()
        has_new, has_old = pc.is_valid(new), pc.is_valid(old)
        image = pc.if_else(has_new, new, old)
        insert = "modify" if src.view == "NEW_IMAGE" else "insert"
        ops = pc.if_else(has_new, pc.if_else(has_old, "modify", insert), "remove")
        meta = parsed.column("Metadata").combine_chunks()
        ts = pc.struct_field(pc.struct_field(meta, "WriteTimestampMicros"), "N")
        problems.flag(pc.is_null(ts), None, "missing_timestamp", "WriteTimestampMicros is missing")
        event_ts = _cast(ts, pa.int64(), _int, None, problems, "WriteTimestampMicros", True)
        key_ids = pc.struct_field(pc.struct_field(parsed.column("Keys").combine_chunks(), "id"), "S")
    out_schema = lake_schema(entity)
    columns = {}
    for a in entity.attributes:
        attr = pc.struct_field(image, a.name)
        columns[a.column] = _unwrap(attr, a.arrow_type, a.kind, a.name, None, problems)
    if key_ids is not None:
        columns["id"] = pc.coalesce(columns["id"], key_ids)
    problems.flag(pc.is_null(columns["id"]), None, "missing_key", "the item has no id")
    has_image = pc.is_valid(image)
    for a in entity.attributes:
        if not a.nullable and a.name != "id":
            problems.flag(pc.and_(has_image, pc.is_null(columns[a.column])), None, "missing_required",
                          f"required attribute {a.name!r} is missing or NULL")
    table = pa.table({
        "tenant_id": pa.repeat(src.tenant_id, n),
        **columns,
        "_extra": pa.nulls(n, pa.string()),
        "_op": ops,
        "_event_ts": pc.cast(event_ts, pa.timestamp("us", tz="UTC")),
        "_sequence": pa.nulls(n, pa.string()),
        "_export_id": pa.repeat(src.export_id, n),
        "_source_file": pa.repeat(src.source_file, n),
        "_line": pa.array(np.arange(first_line, first_line + n, dtype=np.int32)),
    }).cast(out_schema)
    bad = []
    if problems.by_row:
        lines = text.split(b"\n")
        keep = np.ones(n, dtype=bool)
        keep[list(problems.by_row)] = False
        table = table.filter(pa.array(keep))
        bad = [(first_line + i, e.code, e.detail, lines[i]) for i, e in sorted(problems.by_row.items())]
    return Decoded(table, quarantine_table(src, bad), n)


def decode_file(text: bytes, entity: Entity | None, src: Source, threads: bool = True,
                first_line: int = 1) -> Decoded:
    """Decompressed lines (a data file, or a slice of one starting at `first_line`) to rows and
    quarantine rows, by whichever path can."""
    if entity is not None and text:
        try:
            return decode_fast(text, entity, src, threads, first_line)
        except _NotBulk:
            pass
    return decode_precise(text, entity, src, first_line)
