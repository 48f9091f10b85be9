"""Column-wise pieces of the fast path: typed columns, `_extra` text and drift, from parsed Arrow.

The fast path never decides a hard case. Whatever is not plainly right here (a wrong type, an
empty key, a number it cannot vouch for, a string it would have to escape in an unusual way) only
marks the row for the precise path (`Redo`), which then gives that row its result and reason. So
what follows must be exact for the rows it keeps and may be cautious about the rest.

pyarrow parses with the contract's schema and infers every field outside it: a new attribute, a
new field inside a declared map, or a type key a declared attribute should not have (apr sent as
S). DynamoDB JSON suits inference, as every value is a {"T": v} object whose JSON type follows
from T, so a field infers the same way in every row and every block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from tenantlake.formats.attributes import MAX_DEPTH, NUMBER, BadValue, number
from tenantlake.formats.drift import COERCED, NEW_ATTRIBUTE, NEW_FIELD, TRUNCATED, DriftTally, step
from tenantlake.formats.rows import (
    FIRST_TIME,
    LAST_TIME,
    SUB_MICROSECOND,
    _date,
    _fit_decimal,
    _timestamp,
    integer,
)

N_PATTERN = f"^(?:{NUMBER.pattern})$"
FINER_THAN_US = r"([.,]\d{6})\d+"  # digits of a second past the microseconds
# Number text the bulk path vouches for without the precise checks: no exponent and at most 38
# characters, hence at most 38 significant digits and well inside DynamoDB's range.
PLAIN_N = r"^-?(?:\d+\.?\d*|\.\d+)$"
ESCAPES = [("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), ("\b", "\\b"), ("\f", "\\f")]
NEEDS_ESCAPE = r'["\\\x00-\x1f]'


@dataclass(frozen=True)
class ByteSet:
    """The bytes in `among`, below `below` and above `above`: a set _any_byte finds by memchr and
    a min/max, where a regex byte class cost ~4 ns a byte (75x slower on a column's values)."""
    among: bytes = b""
    below: int = 0
    above: int = 255


NEEDS_ESCAPE_BYTES = ByteSet(b'"\\', below=0x20)  # NEEDS_ESCAPE, byte by byte
ARROW_ONLY_BYTES = ByteSet(b"+xX")
NOT_IN_PLAIN_NUMBERS = ByteSet(b"/", below=ord("-"), above=ord("9"))  # all but 0-9 . and -
MINUS = ByteSet(b"-")
ODD_CONTROL = r"[\x00-\x07\x0b\x0e-\x1f]"  # orjson writes these as \u00XX: left to the precise path
KNOWN_KEYS = ("S", "N", "B", "BOOL", "NULL", "SS", "NS", "M", "L")  # BS: rare enough for the precise path
# Base64 as b64decode(validate=True) takes it: whole quanta, padding only at the end.
BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


class Redo:
    """Rows (of the parsed table) the precise path must decide. A view with `skip` ignores what it
    is told about rows decided from another column (an incremental line's other image)."""

    def __init__(self, n: int, rows: np.ndarray | None = None, skip: np.ndarray | None = None):
        self.rows = np.zeros(n, dtype=bool) if rows is None else rows
        self.skip = skip

    def view(self, skip: np.ndarray | None) -> Redo:
        if self.skip is not None and skip is not None:
            skip = self.skip | skip
        return Redo(len(self.rows), self.rows, skip if skip is not None else self.skip)

    def positions(self, mask: pa.Array, rows: pa.Array | None = None) -> np.ndarray:
        """The rows where `mask` holds and that are not skipped; `rows` maps the mask's positions
        (list elements) to rows."""
        mask = pc.fill_null(mask, False)
        if not pc.any(mask).as_py():
            return np.zeros(0, dtype=np.int64)
        idx = pc.indices_nonzero(mask)
        if rows is not None:
            idx = pc.take(rows, idx)
        idx = idx.to_numpy(zero_copy_only=False)
        return idx if self.skip is None else idx[~self.skip[idx]]

    def flag(self, mask: pa.Array, rows: pa.Array | None = None) -> None:
        self.rows[self.positions(mask, rows)] = True


def _children(w: pa.StructArray) -> dict[str, pa.Array]:
    return {w.type.field(i).name: w.field(i) for i in range(w.type.num_fields)}


def child(w: pa.Array, name: str) -> pa.Array:
    """A struct child by name, with the struct's nulls (by index: see _with_parent_nulls)."""
    return pc.struct_field(w, [w.type.get_field_index(name)])


def _with_parent_nulls(w: pa.StructArray) -> dict[str, pa.Array]:
    """Struct children with the struct's own nulls applied (pc.struct_field does this). By index:
    a name such as "." or "a.b" (any text is a DynamoDB attribute name) reads as a field path."""
    return {w.type.field(i).name: pc.struct_field(w, [i]) for i in range(w.type.num_fields)}


# ---- declared attributes to their contract columns ---------------------------------------------

def _cast(values: pa.Array, t: pa.DataType, one: Callable, rows, redo: Redo, numeric: bool = False) -> pa.Array:
    """Cast in bulk; the values a bulk cast cannot vouch for (number text outside DynamoDB's plain
    forms) or that make it fail go value by value through the precise converter `one`, and every
    value `one` refuses marks its row for the precise path."""
    if _sparse(values):  # an attribute few items send (apr sent as S): only those are looked at
        return _present_only(values, t, rows, lambda few, at: _cast(few, t, one, at, redo, numeric))
    odd = None
    if numeric:
        clean = pc.less_equal(pc.utf8_length(values), 40)
        if _arrow_only_forms_possible(values):
            clean = pc.and_kleene(pc.match_substring_regex(values, N_PATTERN), clean)
        clean = pc.fill_null(clean, True)
        if not pc.all(clean).as_py():
            odd = pc.invert(clean)
            values_in_bulk = pc.if_else(clean, values, pa.scalar(None, values.type))
    try:
        out = pc.cast(values if odd is None else values_in_bulk, t)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        out, odd = None, pc.is_valid(values)
    if odd is None:
        return out
    at = pc.indices_nonzero(odd)
    converted, bad = [], []
    for i, v in zip(at.to_pylist(), pc.take(values, at).to_pylist(), strict=True):
        try:
            converted.append(None if v is None else one(v))
        except BadValue:
            bad.append(i)
            converted.append(None)
    if bad:
        redo.flag(pc.is_in(pa.array(range(len(values))), pa.array(bad)), rows)
    base = out if out is not None else pa.nulls(len(values), t)
    return pc.replace_with_mask(base, odd, pa.array(converted, type=t))


def _arrow_only_forms_possible(values: pa.StringArray) -> bool:
    """Whether the text may hold a number form Arrow's casts read and DynamoDB's grammar does not:
    a leading '+' (decimal casts take "+5"), or hex (integer casts take "0x1F"). Text with none of
    the bytes '+', 'x', 'X' has no such form, so what Arrow reads there is the grammar, and the
    regex that checks it (a third of a numeric column's cost) is skipped."""
    return _any_byte(values, ARROW_ONLY_BYTES)


def _any_byte(values: pa.Array, byte_set: ByteSet) -> bool:
    """Whether any byte of a string array's values (or of values it was sliced from) is in
    `byte_set`: a scan of the values' buffer, where a regex kernel costs ~50 ns a value."""
    if not isinstance(values, pa.Array):
        return True  # a chunked array: assume so, and let the kernels look
    data = values.buffers()[2]
    if data is None or not data.size:
        return False
    if byte_set.below > 0 or byte_set.above < 255:
        octets = np.frombuffer(data, dtype=np.uint8)
        if octets.min() < byte_set.below or octets.max() > byte_set.above:
            return True
    raw = data.to_pybytes() if byte_set.among else b""  # one copy, then a memchr per byte
    return any(raw.find(byte) >= 0 for byte in byte_set.among)


def _int(text: str) -> int:
    return integer(number(text))


def observe(observed: dict[tuple[str, str, str], np.ndarray], redo: Redo, key: tuple[str, str, str], mask: pa.Array,
            rows) -> None:
    """Note that the rows where `mask` holds showed the drift `key` (path, type, what)."""
    idx = redo.positions(mask, rows)
    if len(idx):
        seen = observed.setdefault(key, np.zeros(len(redo.rows), dtype=bool))
        seen[idx] = True


# The other type key a declared scalar may arrive as and still be coerced exactly (rows.py's rule):
# number text sent as S where N is declared, a number sent as N where plain text (S) is declared.
COERCIBLE = {"N": "S", "S": "N"}


class Columns:
    """Declared attributes to their contract columns."""

    def __init__(self, redo: Redo, observed: dict[tuple[str, str, str], np.ndarray]):
        self.redo, self.observed = redo, observed

    def unwrap(self, w: pa.StructArray, t: pa.DataType, kind: str | None, rows, path: str,
               coerce: bool = True) -> pa.Array:
        """A declared attribute's parsed {<type key>: ..., NULL: ...} struct as its contract column
        (null where absent or NULL). A type change that converts exactly is coerced and observed
        (never on the partition key, whose type is the table's);
        other type keys mark the row for the precise path (which refuses it with its reason);
        fields outside a declared map are left for `Extras`."""
        redo = self.redo
        kids = _with_parent_nulls(w)
        key = next(iter(kids))  # the declared type key comes first in the parse schema (NULL is inferred)
        redo.flag(_not_one_type_key(w, list(kids.values())), rows)  # none, or two type keys
        if "NULL" in kids:
            redo.flag(pc.invert(pc.fill_null(kids["NULL"], True)), rows)  # {"NULL": false}
        alt = COERCIBLE.get(key) if coerce and kind in (None, "string", "int", "money", "rate", "epoch_ms") else None
        for name, v in kids.items():
            if name not in (key, "NULL") and not (name == alt and pa.types.is_string(v.type)):
                redo.flag(pc.is_valid(v), rows)
        v = kids[key]
        if key == "M":
            fields = [self.unwrap(child(v, f.name), f.type, None, rows, f"{path}.{f.name}") for f in t]
            return pa.StructArray.from_arrays(fields, fields=list(t), mask=pc.is_null(v))
        if key == "L":
            flat = pc.list_flatten(v)
            parents = pc.list_parent_indices(v)
            inner = self.unwrap(flat, t.value_type, None, pc.take(rows, parents) if rows is not None else parents,
                                path + "[]")
            return pa.ListArray.from_arrays(_offsets(v), inner, type=t, mask=pc.is_null(v))
        if key == "SS":
            lengths = pc.list_value_length(v)
            redo.flag(pc.equal(lengths, 0), rows)
            if _has_duplicates(v):
                redo.flag(_duplicate_mask(v), rows)
            return v
        out = None
        if kind == "timestamp":
            try:
                out = _in_range(pc.cast(v, t), rows, redo)  # the usual case, whole; Arrow refuses digits past µs
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                if pc.any(pc.match_substring_regex(v, FINER_THAN_US)).as_py():
                    observe(self.observed, redo, (path, key, TRUNCATED),
                            pc.match_substring_regex(v, SUB_MICROSECOND.pattern), rows)
                    v = pc.replace_substring_regex(v, FINER_THAN_US, r"\1")  # as datetime.fromisoformat cuts
        if out is None:
            out = _scalar(v, t, kind, rows, redo)
        if alt in kids and pa.types.is_string(kids[alt].type) and pc.any(pc.is_valid(kids[alt])).as_py():
            sent = kids[alt]
            # exact only for number text the bulk path vouches for; the precise path judges the rest
            redo.flag(pc.invert(_plain_number(sent)), rows)
            out = pc.coalesce(out, _scalar(sent, t, kind, rows, redo))
            observe(self.observed, redo, (path, f"{alt}->{key}", COERCED), pc.is_valid(sent), rows)
        return out


def _sparse(values: pa.Array) -> bool:
    """Whether most values are absent. pyarrow's regex kernels take as long over a null as over a
    value, so over such an array they are run on its present values only."""
    return values.null_count > len(values) // 2


def _present_only(values: pa.Array, t: pa.DataType, rows, convert: Callable) -> pa.Array:
    """`convert(present values, their rows)` put back in place, null where a value is absent."""
    present = pc.is_valid(values)
    at = pc.indices_nonzero(present)
    few = convert(values.filter(present), pc.take(rows, at) if rows is not None else at)
    return pc.replace_with_mask(pa.nulls(len(values), t), present, few)


def _not_one_type_key(w: pa.StructArray, kids: list[pa.Array]) -> pa.Array:
    """Where a value (a struct of type keys, `kids` with its nulls) has no type key, or two."""
    if not kids:  # only {} was ever sent here
        return pc.is_valid(w)
    if len(kids) == 1:  # the usual case: a value lacks its one key only where the key has more nulls
        if kids[0].null_count == w.null_count:
            return pa.repeat(False, len(w))
        return pc.and_(pc.is_valid(w), pc.is_null(kids[0]))
    count = pc.cast(pc.is_valid(kids[0]), pa.int8())
    for kid in kids[1:]:
        count = pc.add(count, pc.cast(pc.is_valid(kid), pa.int8()))
    return pc.and_(pc.is_valid(w), pc.not_equal(count, 1))


def _plain_number(v: pa.Array) -> pa.Array:
    if _sparse(v):
        return _present_only(v, pa.bool_(), None, lambda few, _: _plain_number(few))
    length = pc.utf8_length(v)
    if _any_byte(v, NOT_IN_PLAIN_NUMBERS):
        return pc.and_(pc.match_substring_regex(v, PLAIN_N), pc.less_equal(length, 38))
    # Only digits, '.' and '-': PLAIN_N is then at most one '.', a '-' only in front, and a digit.
    dots = pc.count_substring(v, ".")
    plain = pc.and_(pc.less_equal(length, 38), pc.and_(pc.less_equal(dots, 1), pc.greater(length, dots)))
    if not _any_byte(v, MINUS):
        return plain
    minus = pc.count_substring(v, "-")
    in_front = pc.or_(pc.equal(minus, 0), pc.and_(pc.equal(minus, 1), pc.starts_with(v, "-")))
    return pc.and_(plain, pc.and_(in_front, pc.greater(length, pc.add(dots, minus))))


def _offsets(v: pa.ListArray) -> pa.Array:
    """Offsets of a list array that may be sliced, starting at 0, for rebuilding it."""
    lengths = pc.fill_null(pc.list_value_length(v), 0).to_numpy(zero_copy_only=False)
    return pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))


def _has_duplicates(v: pa.ListArray) -> bool:
    """Whether any list holds a value twice (sets must not): (list, value code) pairs, counted."""
    if not pc.any(pc.greater(pc.list_value_length(v), 1)).as_py():
        return False
    codes = pc.dictionary_encode(pc.list_flatten(v))
    pairs = (pc.list_parent_indices(v).to_numpy(zero_copy_only=False).astype(np.int64) * (len(codes.dictionary) + 1)
             + codes.indices.to_numpy(zero_copy_only=False))
    pairs.sort()  # np.unique is ~20x slower here than a sort and a look at neighbours
    return bool((pairs[1:] == pairs[:-1]).any())


def _duplicate_mask(v: pa.ListArray) -> pa.Array:
    return pa.array([bool(x) and len(set(x)) != len(x) for x in v.to_pylist()])


def _scalar(v: pa.Array, t: pa.DataType, kind: str | None, rows, redo: Redo) -> pa.Array:
    if kind in ("string", "bool") or kind is None and pa.types.is_string(t):
        return v
    if pa.types.is_decimal(t):
        return _cast(v, t, lambda s: _fit_decimal(number(s), t), rows, redo, True)
    if kind == "int":
        return _cast(v, t, _int, rows, redo, True)
    if kind == "epoch_ms":
        return _in_range(pc.cast(_cast(v, pa.int64(), _int, rows, redo, True), t), rows, redo)
    if kind == "timestamp":
        return _in_range(_cast(v, t, _timestamp, rows, redo), rows, redo)
    if kind == "date":
        return _in_range(_cast(v, t, _date, rows, redo), rows, redo)
    raise AssertionError((kind, t))


def _in_range(times: pa.Array, rows, redo: Redo) -> pa.Array:
    """`times`, with the rows of a time Arrow holds but the lake does not (rows.FIRST_TIME to
    LAST_TIME) marked for the precise path, which quarantines them."""
    first, last = (FIRST_TIME.date(), LAST_TIME.date()) if pa.types.is_date(times.type) else (FIRST_TIME, LAST_TIME)
    outside = pc.or_(pc.less(times, pa.scalar(first, times.type)), pc.greater(times, pa.scalar(last, times.type)))
    redo.flag(pc.fill_null(outside, False), rows)
    return times


# ---- undeclared parts to `_extra` text, and the drift they show ---------------------------------

def _escaped(s: pa.Array, rows, redo: Redo) -> pa.Array:
    """String values as the inside of JSON string literals, escaped as orjson escapes them."""
    if _any_byte(s, NEEDS_ESCAPE_BYTES) and pc.any(pc.match_substring_regex(s, NEEDS_ESCAPE)).as_py():
        redo.flag(pc.match_substring_regex(s, ODD_CONTROL), rows)
        for raw, escaped in ESCAPES:
            s = pc.replace_substring(s, raw, escaped)
    return s


def _wrap(prefix: str, s: pa.Array, suffix: str) -> pa.Array:
    return pc.binary_join_element_wise(prefix, s, suffix, "")


NULL_TEXT = pa.scalar(None, pa.string())


def _object(parts: list[tuple[str, Callable[[str, str], pa.Array | None], bool]], opening: str, closing: str,
            always: bool = False) -> pa.Array | None:
    """Per row, `opening` + the present `"name":text` parts, sorted by name and comma-separated, +
    `closing`. A row with no part present is null, or with `always` (a map that is there but empty
    in this row) just `opening` + `closing`. Each part is made by `make(before, after)`, which
    writes its text between the two in the same pass (null where the part is absent); `whole`
    says it is present in every row (a value that is null only in rows the precise path redoes).

    Where every part is whole (the fields of a list's map elements, usually), the parts are
    joined with commas as they are. Otherwise present parts are written with a leading comma and
    absent ones as "", then the first comma is replaced by `opening`: pyarrow 26's
    binary_join_element_wise(null_handling="skip") drops rows whose inputs are all null, so it
    cannot be used."""
    parts = sorted(parts, key=lambda p: p[0])
    names = [orjson.dumps(name).decode() + ":" for name, _, _ in parts]
    if len(parts) == 1:  # the usual case inside a map: one new field
        whole = parts[0][1](opening + names[0], closing)
        if whole is None:
            return None
        return pc.fill_null(whole, opening + closing) if always else whole
    if all(whole for _, _, whole in parts):
        last = len(parts) - 1
        texts = [make((opening if i == 0 else "") + name, closing if i == last else "")
                 for i, (name, (_, make, _)) in enumerate(zip(names, parts, strict=True))]
        return pc.binary_join_element_wise(*texts, ",")
    pieces = [make("," + name, "") for name, (_, make, _) in zip(names, parts, strict=True)]
    pieces = [pc.fill_null(p, "") for p in pieces if p is not None]
    if not pieces:
        return None
    joined = pc.binary_join_element_wise(*pieces, closing, "")
    # The first comma (one byte) becomes the opening: a byte kernel, where slicing it off as UTF-8
    # and wrapping again took 10x as long. A row with no part is just `closing` here.
    whole = pc.binary_replace_slice(joined, 0, 1, opening)
    empty = pc.equal(joined, closing)
    if not pc.any(empty).as_py():
        return whole
    return pc.if_else(empty, opening + closing if always else NULL_TEXT, whole)


def _join_list(values: pa.Array, lists: pa.ListArray) -> pa.Array:
    """Each list's element texts joined by commas (lists of `lists`, element texts `values`)."""
    return pc.binary_join(pa.ListArray.from_arrays(_offsets(lists), values, mask=pc.is_null(lists)), ",")


def _elements(lists: pa.ListArray, rows) -> tuple[pa.Array, pa.Array]:
    """A list column's elements and, for each, its row."""
    parents = pc.list_parent_indices(lists)
    return pc.list_flatten(lists), (pc.take(rows, parents) if rows is not None else parents)


class Extras:
    """`_extra` text of one parsed image column, plus the drift it shows, in exactly the bytes the
    precise path writes (rows.extra_json): keys sorted at every level, nothing but the undeclared.
    Text is built only for the rows that have an undeclared part."""

    def __init__(self, redo: Redo, observed: dict[tuple[str, str, str], np.ndarray]):
        self.redo, self.observed = redo, observed

    def _flag(self, mask: pa.Array, rows) -> None:
        self.redo.flag(mask, rows)

    def _observe(self, key: tuple[str, str, str], mask: pa.Array, rows) -> None:
        observe(self.observed, self.redo, key, mask, rows)

    def image(self, image: pa.StructArray, declared: dict[str, pa.DataType], rows: pa.Array | None = None) -> pa.Array:
        """`_extra` for every image of one image column (null where nothing is undeclared); `rows`
        names the table row of each image when they are a re-parse of some lines."""
        needed = {name: kid if name not in declared else _undeclared_only(kid, declared[name])
                  for name, kid in _children(image).items()
                  if name not in declared or _undeclared_inside(kid, declared[name])}
        if not needed:
            return pa.nulls(len(image), pa.string())
        narrow = pa.StructArray.from_arrays(list(needed.values()), list(needed), mask=pc.is_null(image))
        has = _any_undeclared(narrow, declared)
        if not pc.any(has).as_py():
            return pa.nulls(len(image), pa.string())
        subset = narrow.filter(has)
        where = pc.indices_nonzero(has)
        sub_rows = pc.take(rows, where) if rows is not None else where
        text = self.members(subset, declared, sub_rows, "", NEW_ATTRIBUTE, "{", "}", 1, always=True)
        return pc.replace_with_mask(pa.nulls(len(image), pa.string()), has, text)

    def members(self, m: pa.StructArray, declared: dict[str, pa.DataType], rows, prefix: str, what: str,
                opening: str, closing: str, depth: int, always: bool = False) -> pa.Array | None:
        """The undeclared parts inside one map (or the item) as JSON object text, null where none;
        `depth` is the nesting level of the map's values (1 for the item's attributes)."""
        parts = []
        for name, kid in _with_parent_nulls(m).items():
            path = step(prefix, name)
            if name not in declared:
                parts.append((name, partial(self.value, kid, rows, depth), kid.null_count == 0))
                for tk, typed in _with_parent_nulls(kid).items() if pa.types.is_struct(kid.type) else ():
                    self._observe((path, tk, what), pc.is_valid(typed), rows)
            elif _may_hold_extra(kid.type):
                parts.append((name, partial(self.inside, kid, declared[name], rows, path, depth), False))
        return _object(parts, opening, closing, always) if parts else None

    def inside(self, w: pa.StructArray, t: pa.DataType, rows, path: str, depth: int, before: str = "",
               after: str = "") -> pa.Array | None:
        """The undeclared parts inside a declared M or L attribute, as its {"M": ...} / {"L": ...}
        text between `before` and `after`; null where it has none. Declared scalars have no inside."""
        if pa.types.is_struct(t) and "M" in _children(w):
            return self.members(child(w, "M"), {f.name: f.type for f in t}, rows, path, NEW_FIELD,
                                before + '{"M":{', "}}" + after, depth + 1)
        if pa.types.is_list(t) and "L" in _children(w):
            lists = child(w, "L")
            flat, parents = _elements(lists, rows)
            if not pa.types.is_struct(flat.type):
                return None
            inner = self.inside(flat, t.value_type, parents, path + "[]", depth + 1)
            if inner is None:
                return None
            # one entry per element, {"M":{}} where it has nothing undeclared (rows.py says why)
            any_per_list = pc.greater(_count_per_list(pc.is_valid(inner), lists), 0)
            text = _wrap(before + '{"L":[', _join_list(pc.fill_null(inner, '{"M":{}}'), lists), "]}" + after)
            return pc.if_else(any_per_list, text, NULL_TEXT)
        return None

    def value(self, w: pa.Array, rows, depth: int, before: str = "", after: str = "") -> pa.Array:
        """Inferred attribute values (structs of type keys) at nesting level `depth` as their
        DynamoDB JSON text, between `before` and `after`."""
        if not pa.types.is_struct(w.type) or depth > MAX_DEPTH:  # not even {"T": v}, or too deep
            self._flag(pc.is_valid(w), rows)
            return pa.nulls(len(w), pa.string())
        if _sparse(w):  # a new attribute few items send: its text is built for those only
            return _present_only(w, pa.string(), rows, lambda few, at: self.value(few, at, depth, before, after))
        kids = _with_parent_nulls(w)
        self._flag(_not_one_type_key(w, list(kids.values())), rows)  # {} or two type keys
        texts = []
        for tk, kid in kids.items():
            text = self._typed(tk, kid, rows, depth, before + '{"' + tk + '":', "}" + after) \
                if tk in KNOWN_KEYS else None
            if text is None:
                self._flag(pc.is_valid(kid), rows)
            else:
                texts.append(text)
        if not texts:
            return pa.nulls(len(w), pa.string())
        return pc.coalesce(*texts) if len(texts) > 1 else texts[0]

    def _typed(self, tk: str, v: pa.Array, rows, depth: int, before: str, after: str) -> pa.Array | None:
        """The JSON text of one type key's values between `before` and `after`, or None where the
        bulk path does not write that type (the row then goes to the precise path)."""
        t = v.type
        if tk == "S" and pa.types.is_string(t):
            return _wrap(before + '"', _escaped(v, rows, self.redo), '"' + after)
        if tk == "N" and pa.types.is_string(t):
            self._flag(pc.invert(_plain_number(v)), rows)
            return _wrap(before + '"', v, '"' + after)
        if tk == "B" and pa.types.is_string(t):
            self._flag(pc.invert(pc.match_substring_regex(v, BASE64)), rows)
            return _wrap(before + '"', v, '"' + after)
        if tk == "NS" and pa.types.is_list(t) and pa.types.is_string(t.value_type):
            flat, parents = _elements(v, rows)
            self._flag(pc.equal(pc.list_value_length(v), 0), rows)
            self._flag(pc.invert(_plain_number(flat)), parents)
            # "1" and "1.0" are one number: compare as floats (a false alarm only costs time)
            as_float = pc.cast(pc.if_else(_plain_number(flat), flat, "0"), pa.float64())
            numbers = pa.ListArray.from_arrays(_offsets(v), as_float, mask=pc.is_null(v))
            if _has_duplicates(numbers):
                self._flag(_duplicate_mask(numbers), rows)
            return _wrap(before + "[", _join_list(_wrap('"', flat, '"'), v), "]" + after)
        if tk == "BOOL" and pa.types.is_boolean(t):
            return pc.if_else(v, before + "true" + after, before + "false" + after)
        if tk == "NULL" and pa.types.is_boolean(t):
            self._flag(pc.invert(v), rows)  # {"NULL": false}
            return pc.if_else(pc.is_valid(v), before + "true" + after, NULL_TEXT)
        if tk == "SS" and pa.types.is_list(t) and pa.types.is_string(t.value_type):
            lengths = pc.list_value_length(v)
            self._flag(pc.equal(lengths, 0), rows)
            if _has_duplicates(v):
                self._flag(_duplicate_mask(v), rows)
            flat, parents = _elements(v, rows)
            quoted = _wrap('"', _escaped(flat, parents, self.redo), '"')
            return _wrap(before + "[", _join_list(quoted, v), "]" + after)
        if tk == "M" and pa.types.is_struct(t):
            if t.num_fields == 0:
                return pc.if_else(pc.is_valid(v), before + "{}" + after, NULL_TEXT)
            parts = [(name, partial(self.value, kid, rows, depth + 1), kid.null_count == 0)
                     for name, kid in _with_parent_nulls(v).items()]
            text = _object(parts, before + "{", "}" + after, always=True)
            return text if v.null_count == 0 else pc.if_else(pc.is_valid(v), text, NULL_TEXT)
        if tk == "L" and pa.types.is_list(t):
            flat, parents = _elements(v, rows)
            if pa.types.is_null(flat.type):  # only empty lists (a JSON null element is caught earlier)
                return pc.if_else(pc.is_valid(v), before + "[]" + after, NULL_TEXT)
            return _wrap(before + "[", _join_list(self.value(flat, parents, depth + 1), v), "]" + after)
        return None


def _may_hold_extra(t: pa.DataType) -> bool:
    """Whether a declared attribute's parsed type can hold undeclared fields (maps, lists of maps)."""
    return pa.types.is_struct(t) and any(_may_hold_extra(f.type) or f.name == "M" for f in t) or \
        pa.types.is_list(t) and _may_hold_extra(t.value_type)


def _undeclared_inside(w: pa.Array, t: pa.DataType) -> bool:
    """Whether the parsed type of a declared attribute has fields its contract type does not."""
    if pa.types.is_struct(t) and "M" in _children(w):
        m = w.field("M")
        fields = {f.name: f.type for f in t}
        return any(name not in fields or _undeclared_inside(kid, fields[name]) for name, kid in _children(m).items())
    if pa.types.is_list(t) and "L" in _children(w):
        flat = w.field("L").values
        return pa.types.is_struct(flat.type) and _undeclared_inside(flat, t.value_type)
    return False


def _undeclared_only(w: pa.StructArray, t: pa.DataType) -> pa.StructArray:
    """A declared map attribute's parsed {"M": ...} cut down to the fields that hold undeclared
    parts (the rest is never written to `_extra`, and copying it was most of Extras' filter)."""
    if not (pa.types.is_struct(t) and "M" in _children(w)):
        return w  # a list of maps: kept whole
    fields = {f.name: f.type for f in t}
    m = w.field("M")
    kept = {name: kid if name not in fields else _undeclared_only(kid, fields[name])
            for name, kid in _children(m).items() if name not in fields or _undeclared_inside(kid, fields[name])}
    inner = pa.StructArray.from_arrays(list(kept.values()), list(kept), mask=m.is_null())
    return pa.StructArray.from_arrays([inner], ["M"], mask=w.is_null())


def _any_undeclared(m: pa.StructArray, declared: dict[str, pa.DataType]) -> pa.Array:
    """Per row of a map (or the item), whether any undeclared part is present."""
    out = pa.repeat(False, len(m))
    for name, kid in _with_parent_nulls(m).items():
        if name not in declared:
            out = pc.or_(out, pc.is_valid(kid))
        elif _undeclared_inside(kid, declared[name]):
            t = declared[name]
            if pa.types.is_struct(t):
                inner = _any_undeclared(child(kid, "M"), {f.name: f.type for f in t})
            else:
                lists = child(kid, "L")
                flat = pc.list_flatten(lists)
                per_element = _any_undeclared(child(flat, "M"), {f.name: f.type for f in t.value_type})
                inner = pc.greater(_count_per_list(per_element, lists), 0)
            out = pc.or_(out, pc.fill_null(inner, False))
    return out


def tally_observed(observed: dict[tuple[str, str, str], np.ndarray], tally: DriftTally, keep: np.ndarray,
                   event_ts: np.ndarray) -> None:
    """Count the rows that carried each observation among those kept (published from here)."""
    for key, seen in observed.items():
        rows = seen & keep
        if rows.any():
            ts = event_ts[rows]
            tally.add(key, int(ts.min()), int(rows.sum()), int(ts.max()))


def has_temporal(t: pa.DataType) -> bool:
    if pa.types.is_struct(t):
        return any(has_temporal(f.type) for f in t)
    if pa.types.is_list(t):
        return has_temporal(t.value_type)
    return pa.types.is_temporal(t)


def as_text(t: pa.DataType) -> pa.DataType:
    """The type with every inferred timestamp read as text instead (see temporal_rows)."""
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, as_text(f.type)) for f in t])
    if pa.types.is_list(t):
        return pa.list_(as_text(t.value_type))
    return pa.string() if pa.types.is_temporal(t) else t


def temporal_rows(a: pa.Array, n: int, rows: pa.Array | None = None) -> np.ndarray | None:
    """Rows holding a value pyarrow inferred as a timestamp, or None if the type has none.

    pyarrow's JSON reader infers text such as "2026-10-01" or "2026-10-01T10:00:00Z" as
    timestamp[s] and cannot be told not to (apache/arrow#46698); the text as sent is gone then,
    so these rows' `_extra` comes from a second parse of just their lines with such fields as text."""
    if not has_temporal(a.type):
        return None
    out = np.zeros(n, dtype=bool)
    if pa.types.is_struct(a.type):
        for name in _children(a):
            sub = temporal_rows(child(a, name), n, rows)
            if sub is not None:
                out |= sub
    elif pa.types.is_list(a.type):
        parents = pc.list_parent_indices(a)
        sub = temporal_rows(pc.list_flatten(a), n, pc.take(rows, parents) if rows is not None else parents)
        if sub is not None:
            out |= sub
    else:
        idx = pc.indices_nonzero(pc.is_valid(a))
        out[(pc.take(rows, idx) if rows is not None else idx).to_numpy(zero_copy_only=False)] = True
    return out


def _count_per_list(flags: pa.Array, lists: pa.ListArray) -> pa.Array:
    """How many elements of each list hold `flags` (0 for empty or null lists)."""
    counts = np.zeros(len(lists), dtype=np.int64)
    parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    np.add.at(counts, parents[pc.fill_null(flags, False).to_numpy(zero_copy_only=False)], 1)
    return pa.array(counts)
