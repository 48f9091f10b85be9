"""DynamoDB JSON export files (full and incremental) to typed Arrow tables.

Two paths, one result. The fast path hands the text to pyarrow's JSON parser with the contract's
schema (each attribute a struct of its allowed type keys) and lets it infer whatever lies outside
it, then unwraps and casts column by column and writes `_extra` column-wise (tenantlake.formats
.columnar). Every row it cannot vouch for (a defect, a type change, an odd value) goes to the
precise path (`rows.image_row`, one line at a time), which names a reason for every row it refuses;
a stretch of text pyarrow cannot parse at all is cut in halves until the bad lines are found. So
speed never decides what lands where: both paths give the same rows, quarantine and drift, and
drift costs the fast path a little column work, not its speed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from tenantlake.contracts import SHAPES, Entity
from tenantlake.formats.attributes import BadValue, number
from tenantlake.formats.columnar import (
    Columns,
    Extras,
    Redo,
    _cast,
    _int,
    as_text,
    child,
    tally_observed,
    temporal_rows,
)
from tenantlake.formats.drift import Drift, DriftTally, merge_drift
from tenantlake.formats.manifest import line_ends
from tenantlake.formats.rows import (
    QUARANTINE_SCHEMA,
    TENANT_FIELDS,
    TYPE_KEY,
    change_row,
    image_row,
    integer,
    key_of,
    lake_schema,
)

SCALAR = {"S": pa.string(), "N": pa.string(), "BOOL": pa.bool_(), "SS": pa.list_(pa.string())}
BLOCK = 4 << 20  # pyarrow's parse block; a longer line gets a larger block, never the slow path
MIN_PIECE = 256 << 10  # text pyarrow cannot parse is halved down to this, then read line by line
# A text this short is read line by line: the bulk path's fixed cost, an Arrow call or more per
# column, is that of ~50 items read alone (Debt, this machine: 3 lines 2.1 ms in bulk, 0.25 ms line by
# line; even at ~55 lines, 20 KB). Tiny hourly increments are most batches of a fleet.
SMALL_TEXT = 16 << 10
SPLICE_RUNS = 64  # decoded rows are spliced from at most this many slices, else copied (_in_line_order)

# Inferred fields pyarrow read as timestamps, per (entity, export kind), declared as text in later
# parses of this process so that their lines need no second parse (see columnar.temporal_rows).
# Only speed depends on it: a field declared as text reads the same text as a second parse would.
_TEXT_HINTS: dict[tuple[str, str], pa.Schema] = {}
MAX_HINTS = 256


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
    drift: list[Drift] = field(default_factory=list)  # of the published rows, per (path, type, what)


def concat_decoded(parts: list[Decoded]) -> Decoded:
    return Decoded(pa.concat_tables([p.rows for p in parts]), pa.concat_tables([p.quarantine for p in parts]),
                   sum(p.lines for p in parts), merge_drift(*(p.drift for p in parts)))


class _NotBulk(Exception):
    """The fast path cannot take this text as a whole."""


# ---- the precise path -------------------------------------------------------------------------

CHANGE_LINE = ("Metadata", "Keys", "OldImage", "NewImage")
# Lines of the other export type than the manifest says: the export is not what it claims, so the
# whole batch fails (ingest) and waits, rather than each of its items being set aside.
WRONG_EXPORT_TYPE = "wrong_export_type"

def _line_row(entity: Entity | None, doc, src: Source) -> tuple[dict, list]:
    if not isinstance(doc, dict):
        raise BadValue("not_an_export_line", "a line must be a JSON object")
    if src.kind == "FULL_EXPORT":
        if set(doc) != {"Item"}:
            if "Keys" in doc and set(doc) <= set(CHANGE_LINE):
                raise BadValue(WRONG_EXPORT_TYPE, "an incremental-export line, but the manifest says FULL_EXPORT")
            raise BadValue("not_an_export_line", "a full-export line is {\"Item\": {...}}")
        row, drift = image_row(entity, doc["Item"], None, src.tenant_id)
        return {**row, "_op": "snapshot", "_event_ts": src.export_time_us}, drift
    unknown = set(doc) - set(CHANGE_LINE)
    if unknown or "Keys" not in doc:
        if set(doc) == {"Item"}:
            raise BadValue(WRONG_EXPORT_TYPE, "a full-export line, but the manifest says INCREMENTAL_EXPORT")
        raise BadValue("not_an_export_line", "an incremental line has Metadata, Keys, OldImage, NewImage")
    sent_null = [name for name in CHANGE_LINE if name in doc and doc[name] is None]
    if sent_null:  # an absent NewImage is a delete; a null one is no line DynamoDB writes
        raise BadValue("not_an_export_line", f"{', '.join(sent_null)} sent as null: a line's parts are objects, "
                                             "or absent")
    meta = doc.get("Metadata")
    sent = meta.get("WriteTimestampMicros") if isinstance(meta, dict) else None
    ts = sent.get("N") if isinstance(sent, dict) else sent  # typed in the readings seen; bare accepted
    try:  # N text in any form DynamoDB writes ("1.795158061E+15" too), as the bulk path reads it
        ts = ts if isinstance(ts, int) and not isinstance(ts, bool) else integer(number(ts))
    except (BadValue, TypeError):
        said = "absent" if sent is None else f"{orjson.dumps(sent).decode()[:40]}, not an N number of microseconds"
        raise BadValue("missing_timestamp", f"Metadata.WriteTimestampMicros is {said}") from None
    old, new = doc.get("OldImage"), doc.get("NewImage")
    image = new if new is not None else old
    row, drift = change_row(entity, image, doc["Keys"], src.tenant_id, remove=new is None)
    if entity is not None and new is not None and old is not None:
        same_item(entity, old, doc["Keys"])
    return {**row, "_op": _op(old is not None, new is not None, src.view), "_event_ts": ts}, drift


def same_item(entity: Entity, old, keys: dict | None) -> None:
    """A line's two images are of one item: the old one holds the key, and the Keys' value (DynamoDB
    writes every image with its key attributes)."""
    name = entity.key.name
    if not isinstance(old, dict) or name not in old:
        raise BadValue("key_mismatch", f"OldImage has no {name!r}: both images of a change are of its item")
    key_of(entity, old, keys)


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


def _precise_line(entity: Entity | None, raw: bytes, n: int, src: Source):
    """One line: (row, None, drift) or (None, quarantine entry, [])."""
    line = raw.rstrip(b"\r")
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, (n, "invalid_utf8", f"invalid UTF-8 at byte {e.start}", raw), []
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        return None, (n, "malformed_json", f"not valid JSON: {e}", raw), []
    try:
        row, drift = _line_row(entity, doc, src)
    except BadValue as e:
        return None, (n, e.code, str(e.detail), raw), []
    row["_line"] = n
    row.setdefault("_sequence", None)
    return row, None, drift


def _precise_lines(entity: Entity | None, numbered, src: Source, tally: DriftTally):
    rows, bad = [], []
    for n, raw in numbered:
        row, b, drift = _precise_line(entity, raw, n, src)
        if b is not None:
            bad.append(b)
        else:
            rows.append(row)
            tally.add_row(drift, row["_event_ts"])
    return rows, bad


def decode_precise(text: bytes, entity: Entity | None, src: Source, first_line: int = 1) -> Decoded:
    items = [(n, raw) for n, raw in enumerate(text.split(b"\n"), first_line) if raw.rstrip(b"\r").strip()]
    tally = DriftTally()
    rows, bad = _precise_lines(entity, items, src, tally)
    return Decoded(stamp_rows(rows, src, lake_schema(entity)), quarantine_table(src, bad), len(items),
                   tally.result())


# ---- the fast path ----------------------------------------------------------------------------

def _wrapper(t: pa.DataType, kind: str | None = None) -> pa.DataType:
    """The typed-attribute struct pyarrow parses one value into: {<type key>: ...}. NULL (and any
    other type key) is inferred where a row sends it: declaring it too cost ~15% of the parse, a
    null appended per attribute per row."""
    if kind is not None and kind not in SHAPES:
        key = TYPE_KEY[kind]
        if key is None:
            raise _NotBulk("the contract keeps an attribute as JSON text")
        return pa.struct([(key, SCALAR[key])])
    if pa.types.is_struct(t):
        return pa.struct([("M", pa.struct([(f.name, _wrapper(f.type)) for f in t]))])
    if pa.types.is_list(t):
        return pa.struct([("L", pa.list_(_wrapper(t.value_type)))])
    key = "N" if pa.types.is_decimal(t) else "S"
    return pa.struct([(key, SCALAR[key])])


def _item_struct(entity: Entity) -> pa.StructType:
    return pa.struct([(a.name, _wrapper(a.arrow_type, a.kind)) for a in entity.attributes])


def parse_schema(entity: Entity, kind: str, bare_timestamps: bool = False) -> pa.Schema:
    item = _item_struct(entity)
    if kind == "FULL_EXPORT":
        return pa.schema([("Item", item)])
    ts = pa.int64() if bare_timestamps else pa.struct([("N", pa.string())])
    return pa.schema([
        ("Metadata", pa.struct([("WriteTimestampMicros", ts)])),
        ("Keys", pa.struct([(entity.key.name, pa.struct([("S", pa.string())]))])),
        ("OldImage", item), ("NewImage", item),
    ])


def _merge(base: pa.DataType, hint: pa.DataType) -> pa.DataType:
    """`base` with the fields only `hint` has (structs, lists of structs); `base` wins elsewhere."""
    if pa.types.is_struct(base) and pa.types.is_struct(hint):
        hinted = {f.name: f.type for f in hint}
        fields = [pa.field(f.name, _merge(f.type, hinted[f.name]) if f.name in hinted else f.type) for f in base]
        names = {f.name for f in base}
        return pa.struct(fields + [f for f in hint if f.name not in names])
    if pa.types.is_list(base) and pa.types.is_list(hint):
        return pa.list_(_merge(base.value_type, hint.value_type))
    return base


def _temporal_paths(t: pa.DataType) -> pa.DataType | None:
    """Only the parts of `t` that lead to a timestamp, each timestamp as text; None if none."""
    if pa.types.is_struct(t):
        fields = [(f.name, _temporal_paths(f.type)) for f in t]
        fields = [pa.field(name, sub) for name, sub in fields if sub is not None]
        return pa.struct(fields) if fields else None
    if pa.types.is_list(t):
        sub = _temporal_paths(t.value_type)
        return pa.list_(sub) if sub is not None else None
    return pa.string() if pa.types.is_temporal(t) else None


def _leaves(t: pa.DataType) -> int:
    if pa.types.is_struct(t):
        return sum(_leaves(f.type) for f in t)
    return _leaves(t.value_type) if pa.types.is_list(t) else 1


def _learn(entity: Entity, kind: str, parsed: pa.Schema) -> None:
    hint = _temporal_paths(pa.struct(list(parsed)))
    if hint is not None:
        known = _TEXT_HINTS.get((entity.name, kind))
        merged = _merge(pa.struct(list(known)), hint) if known is not None else hint
        if _leaves(merged) <= MAX_HINTS:  # past that (a map keyed by data?), re-parsing is the cheaper way
            _TEXT_HINTS[(entity.name, kind)] = pa.schema(list(merged))


def _parse(text: bytes, entity: Entity, kind: str, threads: bool) -> pa.Table:
    block, bare = BLOCK, False
    for _ in range(3):
        schema = parse_schema(entity, kind, bare)
        hint = _TEXT_HINTS.get((entity.name, kind))
        if hint is not None:
            schema = pa.schema(list(_merge(pa.struct(list(schema)), pa.struct(list(hint)))))
        try:
            # "infer": fields outside the contract are parsed too, not refused (they are drift)
            parsed = pj.read_json(pa.BufferReader(text),
                                  read_options=pj.ReadOptions(use_threads=threads, block_size=block),
                                  parse_options=pj.ParseOptions(explicit_schema=schema,
                                                                unexpected_field_behavior="infer"))
            _learn(entity, kind, parsed.schema)
            return parsed
        except pa.ArrowInvalid as e:
            if "straddl" in str(e) and block == BLOCK:  # a line longer than a block (a 400 KB item)
                block = max(BLOCK, 2 * max(map(len, text.split(b"\n"))))
            elif "WriteTimestampMicros" in str(e) and not bare:  # sent as a bare number
                bare = True
            else:
                raise _NotBulk(str(e)) from None
        except pa.ArrowNotImplementedError as e:
            raise _NotBulk(str(e)) from None
    raise _NotBulk("pyarrow could not parse the text")


_NULL = re.compile(rb"null")


def _suspect_lines(lines: _Lines, redo: Redo) -> None:
    """Lines pyarrow reads differently from a JSON parser: a JSON null reads as an absent value,
    and an escaped lone surrogate as invalid UTF-8. Valid DynamoDB JSON holds neither token
    outside strings, so this only ever sends a few lines too many to the precise path."""
    text = lines.text
    marks = [m.start() for m in _NULL.finditer(text)]  # a regex scans for it 1.4x faster than bytes.find
    if b"\\" in text:  # a fast memchr
        pos = text.find(b"\\u")
        while pos >= 0:
            if text[pos + 2:pos + 4].lower() in (b"d8", b"d9", b"da", b"db", b"dc", b"dd", b"de", b"df"):
                marks.append(pos)
            pos = text.find(b"\\u", pos + 2)
    if marks:
        redo.rows[np.searchsorted(lines.ends, np.array(marks))] = True


def _envelope(parsed: pa.Table, expected: tuple[str, ...], redo: Redo) -> None:
    """Top-level fields a line must not have (the precise path names them)."""
    for name in parsed.column_names:
        if name not in expected:
            redo.flag(pc.is_valid(parsed.column(name).combine_chunks()))


class _Lines:
    """The text's lines, found when first needed, and re-parses of some of them."""

    def __init__(self, text: bytes, threads: bool, ends: np.ndarray | None = None):
        self.text, self.threads, self._ends = text, threads, ends
        self.parsed: pa.Table | None = None  # set once the text is parsed (reparse follows its schema)

    @property
    def ends(self) -> np.ndarray:
        """Where each line's newline is."""
        if self._ends is None:
            self._ends = line_ends(self.text)
        return self._ends

    def lines(self, idx: np.ndarray) -> list[bytes]:
        """The lines `idx` (0-based), each without its newline."""
        ends = self.ends
        starts = np.where(idx > 0, ends[np.maximum(idx - 1, 0)] + 1, 0)
        text = self.text
        return [text[a:b] for a, b in zip(starts.tolist(), ends[idx].tolist(), strict=True)]

    def reparse(self, idx: np.ndarray, column: str) -> pa.StructArray | None:
        """`column` of the lines `idx`, parsed again with every inferred timestamp read as text."""
        schema = pa.schema([pa.field(f.name, as_text(f.type)) for f in self.parsed.schema])
        text = b"\n".join(self.lines(idx)) + b"\n"
        try:
            sub = pj.read_json(pa.BufferReader(text), read_options=pj.ReadOptions(use_threads=self.threads,
                                                                                 block_size=max(BLOCK, len(text))),
                               parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        return sub.column(column).combine_chunks() if sub.num_rows == len(idx) else None


def _own_tenant(image: pa.StructArray, tenant_id: str, redo: Redo) -> None:
    """An item naming its own tenant must name the registry's: rows that name any other value,
    or name it other than as S, are for the precise path (which quarantines them)."""
    for name in TENANT_FIELDS:
        if image.type.get_field_index(name) < 0:
            continue
        w = child(image, name)
        same = pa.repeat(False, len(w))
        if pa.types.is_struct(w.type) and w.type.get_field_index("S") >= 0 and w.type.num_fields == 1:
            same = pc.fill_null(pc.equal(child(w, "S"), tenant_id), False)
        redo.flag(pc.and_(pc.is_valid(w), pc.invert(same)))


def _image_columns(image: pa.StructArray, column: str, entity: Entity, redo: Redo, observed: dict,
                   lines: _Lines, tenant_id: str) -> tuple[dict, pa.Array]:
    _own_tenant(image, tenant_id, redo)
    unwrap = Columns(redo, observed).unwrap
    columns = {a.column: unwrap(child(image, a.name), a.arrow_type, a.kind, None, a.name, coerce=not a.key)
               for a in entity.attributes}
    declared = {a.name: a.arrow_type for a in entity.attributes}
    later = temporal_rows(image, len(image))
    if later is None:
        return columns, Extras(redo, observed).image(image, declared)
    extra = Extras(redo.view(later), observed).image(image, declared)
    if redo.skip is not None:
        later &= ~redo.skip
    idx = np.flatnonzero(later)
    again = lines.reparse(idx, column) if len(idx) else None
    if again is None:
        redo.rows[idx] = True
        return columns, extra
    redone = Extras(redo, observed).image(again, declared, pa.array(idx))
    return columns, pc.replace_with_mask(extra, pa.array(later), redone)


def decode_fast(text: bytes, entity: Entity, src: Source, threads: bool = True, first_line: int = 1,
                line_ends: np.ndarray | None = None) -> Decoded:
    if not text.endswith(b"\n"):
        text += b"\n"
        line_ends = None if line_ends is None else np.append(line_ends, len(text) - 1)
    lines = _Lines(text, threads, line_ends)
    ends = lines.ends  # one pass finds the lines, a blank one among them, and counts them
    if b"\r" in text or ends[0] == 0 or (np.diff(ends) == 1).any():
        raise _NotBulk("blank lines or CRLF: line numbers need the precise path")
    if not _valid_utf8(text):  # pyarrow's parser lets invalid UTF-8 through into string columns
        raise _NotBulk("invalid UTF-8")
    lines.parsed = parsed = _parse(text, entity, src.kind, threads)
    n = parsed.num_rows
    if n != len(ends):
        raise _NotBulk("a line holds more than one JSON value")
    redo, observed = Redo(n), {}
    _suspect_lines(lines, redo)
    key = entity.key
    if src.kind == "FULL_EXPORT":
        _envelope(parsed, ("Item",), redo)
        image = parsed.column("Item").combine_chunks()
        redo.flag(pc.is_null(image))
        columns, extra = _image_columns(image, "Item", entity, redo, observed, lines, src.tenant_id)
        ops = pa.repeat("snapshot", n)
        event_ts = np.full(n, src.export_time_us, dtype=np.int64)
        has_image = pc.is_valid(image)
        ids = columns[key.column]
    else:
        _envelope(parsed, ("Metadata", "Keys", "OldImage", "NewImage"), redo)
        old = parsed.column("OldImage").combine_chunks()
        new = parsed.column("NewImage").combine_chunks()
        has_new, has_old = pc.is_valid(new), pc.is_valid(old)
        chosen = has_new.to_numpy(zero_copy_only=False)
        # Each line is decided by the image it keeps: the other image's oddities do not count.
        new_cols, new_extra = _image_columns(new, "NewImage", entity, redo.view(~chosen), observed, lines,
                                             src.tenant_id)
        old_cols, old_extra = _image_columns(old, "OldImage", entity, redo.view(chosen), observed, lines,
                                             src.tenant_id)
        columns = {c: pc.if_else(has_new, new_cols[c], old_cols[c]) for c in new_cols}
        extra = pc.if_else(has_new, new_extra, old_extra)
        insert = "modify" if src.view == "NEW_IMAGE" else "insert"
        ops = pc.if_else(has_new, pc.if_else(has_old, "modify", insert), "remove")
        ts = child(parsed.column("Metadata").combine_chunks(), "WriteTimestampMicros")
        ts = child(ts, "N") if pa.types.is_struct(ts.type) else ts
        redo.flag(pc.is_null(ts))
        if not pa.types.is_integer(ts.type):
            ts = _cast(ts, pa.int64(), _int, None, redo, True)
        event_ts = pc.fill_null(ts, 0).to_numpy(zero_copy_only=False)
        keys = parsed.column("Keys").combine_chunks()
        wrapper = child(keys, key.name)
        redo.flag(pc.and_(pc.is_valid(keys), pc.is_null(wrapper)))  # Keys without the key
        for other in (f.name for f in keys.type if f.name != key.name):
            redo.flag(pc.is_valid(child(keys, other)))  # Keys naming more than the contract's key
        for tk in (wrapper.type.field(i).name for i in range(wrapper.type.num_fields)):
            if tk != "S":
                redo.flag(pc.is_valid(child(wrapper, tk)))  # a key of another type
        key_ids = child(wrapper, "S")
        redo.flag(pc.is_null(keys))
        image_ids = columns[key.column]
        redo.flag(pc.fill_null(pc.not_equal(image_ids, key_ids), False))  # Keys disagree with the image
        both = pc.and_(has_new, has_old)  # ... or with the other image, or it lacks the key (same_item)
        redo.flag(pc.and_(both, pc.fill_null(pc.not_equal(old_cols[key.column], key_ids), True)))
        has_image = pc.or_(has_new, has_old)
        redo.flag(pc.and_(has_image, pc.is_null(image_ids)))  # an image without its key, or a NULL one
        ids = pc.coalesce(image_ids, key_ids)
    redo.flag(pc.is_null(ids))
    redo.flag(pc.equal(ids, ""))
    columns[key.column] = pc.fill_null(ids, "")  # the column is non-null; those rows are redone
    for a in entity.attributes:
        if not a.nullable and not a.key:
            redo.flag(pc.and_(has_image, pc.is_null(columns[a.column])))
    table = pa.table({
        "tenant_id": pa.repeat(src.tenant_id, n),
        **columns,
        "_extra": extra,
        "_op": ops,
        "_event_ts": pc.cast(pa.array(event_ts), pa.timestamp("us", tz="UTC")),
        "_sequence": pa.nulls(n, pa.string()),
        "_export_id": pa.repeat(src.export_id, n),
        "_source_file": pa.repeat(src.source_file, n),
        "_line": pa.array(np.arange(first_line, first_line + n, dtype=np.int32)),
    }).cast(lake_schema(entity))
    tally, bad = DriftTally(), []
    keep = ~redo.rows
    tally_observed(observed, tally, keep, event_ts)
    if redo.rows.any():
        redone = np.flatnonzero(redo.rows)
        rows, bad = _precise_lines(entity, zip((first_line + redone).tolist(), lines.lines(redone), strict=True), src,
                                   tally)
        table = _in_line_order(table, keep, stamp_rows(rows, src, table.schema))
    return Decoded(table, quarantine_table(src, bad), n, tally.result())


def _valid_utf8(text: bytes) -> bool:
    if text.isascii():
        return True
    offsets = pa.py_buffer(np.array([0, len(text)], dtype=np.int64))
    try:  # Arrow checks UTF-8 in place, without decoding to a str
        pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(text)]).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _in_line_order(fast: pa.Table, keep: np.ndarray, precise: pa.Table) -> pa.Table:
    """The fast rows to keep, with the precise path's rows put back in line order. Usually only a
    few rows were redone, and the result is spliced from slices, without a copy (a filter and a
    sort took 23 ms on a 32 MiB slice of a drifting export, the Parquet write 71); where many
    were, one `take` copies it (a table of many small chunks writes slowly)."""
    kept = np.flatnonzero(keep)
    if precise.num_rows == 0 and len(kept) == fast.num_rows:
        return fast
    lines = np.concatenate([fast.column("_line").to_numpy()[kept], precise.column("_line").to_numpy()])
    rows = np.concatenate([kept, np.arange(fast.num_rows, fast.num_rows + precise.num_rows)])
    order = rows[np.argsort(lines, kind="stable")]
    both = pa.concat_tables([fast, precise])
    starts = np.flatnonzero(np.diff(order, prepend=-2) != 1)  # where a run of consecutive rows begins
    if len(starts) > SPLICE_RUNS or not len(order):
        return both.take(pa.array(order, type=pa.int64()))
    ends = np.append(starts[1:], len(order))
    return pa.concat_tables([both.slice(order[a], b - a) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)])


def decode_file(text: bytes, entity: Entity | None, src: Source, threads: bool = True,
                first_line: int = 1, line_ends: np.ndarray | None = None) -> Decoded:
    """Decompressed lines (a data file, or a slice of one starting at `first_line`, with where its
    newlines are if known) to rows and quarantine rows, by whichever path can; text the fast path
    cannot take is halved until the lines it cannot take are read alone, so one bad line costs its
    neighbours nothing."""
    if entity is None or len(text) <= SMALL_TEXT or any(a.kind == "json" for a in entity.attributes):
        return decode_precise(text, entity, src, first_line)
    try:
        return decode_fast(text, entity, src, threads, first_line, line_ends)
    except (_NotBulk, pa.ArrowException):  # an Arrow surprise costs speed, never the tenant's run
        if len(text) <= MIN_PIECE or text.count(b"\n", 0, len(text) - 1) == 0:
            return decode_precise(text, entity, src, first_line)
    cut = text.rfind(b"\n", 0, len(text) // 2) + 1 or text.find(b"\n") + 1
    return concat_decoded([decode_file(text[:cut], entity, src, threads, first_line),
                           decode_file(text[cut:], entity, src, threads, first_line + text.count(b"\n", 0, cut))])
