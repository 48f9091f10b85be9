"""The vectorised evaluator: the suites' expectation types over many batches at once, with Great
Expectations 1.24's semantics on each batch alone, and GX-format results.

One GX validation costs ~70 ms whatever the batch size (the metric graph, a pandas query per
row_condition); a task holding hundreds of tiny batches would spend almost all its time there.
Here the batches of one entity are concatenated (a batch index and a row position ride along) and
each expectation is one pass of numpy / pyarrow over all of them; counts, row positions and
successes are then taken per batch, so a unique check, a row count, a `$tenant_id` or a `fail` is
still about its own batch.

What GX does, and so what this does (read in great_expectations 1.24.1, PandasExecutionEngine):
  * row_condition (`col != "x"`, condition_parser pandas) is `DataFrame.query`: a null `col` is
    kept by `!=` and dropped by `==`; element_count counts the rows the condition keeps.
  * column map expectations drop nulls before their condition (filter_column_isnull), except
    not_null, whose unexpected rows are the nulls; success is vacuous when nothing is left, else
    (nonnull - unexpected) / nonnull >= mostly (not_null: over element_count).
  * unique is `~duplicated(keep=False)`: every row of a repeated value is unexpected.
  * in_set is `isin`; match_regex is `str.contains` (re.search, so `$` also matches before a
    final newline); value lengths are `str.len()` (code points) and `Series.between`.
  * between compares float64 (decimals are cast for the audit, ints promote), tz-aware
    timestamps against tz-aware datetimes, and dates against dates (pydantic turns a
    "YYYY-MM-DD" bound into a date first, a timestamp string into a datetime).
  * pair a > b with ignore_row_if=either_value_is_missing drops rows where either is null;
    element_count is the rows before that drop, missing_count the rows dropped.
  * results list at most 200 unexpected values (constants.MAX_RESULT_RECORDS) but every
    unexpected row position; partial lists hold the first 20; values are rendered the way GX's
    convert_to_json_serializable renders what pandas hands it (a pair's timestamps come from
    `.values`: numpy datetime64, no zone).
Columns are taken as the lake holds them: text (all but between and pairs read text only),
int64, float64 and decimals, timestamp[us] with a zone, date32. Anything else (another type,
another kwarg, another column type, a bound that is not plainly a number, a date or a timestamp
with a zone, a row condition other than `col ==/!= "text"`) is not guessed: `unsupported_*`
names it and the batch goes through GX. tests/tenantlake/test_quality_fast.py holds all of this
against GX itself.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from tenantlake.quality.suites import name

MAX_RESULT_RECORDS = 200  # great_expectations.constants.MAX_RESULT_RECORDS
PARTIAL = 20  # GX's partial_unexpected_count for the COMPLETE result format
BATCH_ID = "lake-batch"  # what GX names the batch of our pandas asset (tenantlake.quality.gx)
ROW = "_row"
NO_EXCEPTION = {"raised_exception": False, "exception_traceback": None, "exception_message": None}

NOT_NULL = "expect_column_values_to_not_be_null"
UNIQUE = "expect_column_values_to_be_unique"
IN_SET = "expect_column_values_to_be_in_set"
BETWEEN = "expect_column_values_to_be_between"
REGEX = "expect_column_values_to_match_regex"
LENGTHS = "expect_column_value_lengths_to_be_between"
REFERENCE = "expect_column_values_to_reference_published"
PAIR = "expect_column_pair_values_a_to_be_greater_than_b"
ROW_COUNT = "expect_table_row_count_to_equal"

_MAP = {"column", "mostly", "row_condition", "condition_parser"}
KWARGS = {  # the kwargs each known type may carry here; any other sends the suite's batches to GX
    NOT_NULL: _MAP, UNIQUE: _MAP, IN_SET: _MAP | {"value_set"}, REGEX: _MAP | {"regex"},
    BETWEEN: _MAP | {"min_value", "max_value", "strict_min", "strict_max"},
    LENGTHS: _MAP | {"min_value", "max_value", "strict_min", "strict_max"},
    REFERENCE: _MAP | {"entity"},
    PAIR: {"column_A", "column_B", "or_equal", "ignore_row_if", "mostly", "row_condition", "condition_parser"},
    ROW_COUNT: {"value", "row_condition", "condition_parser"},
}
# Field defaults of the expectation models above; GX leaves kwargs equal to them out of results.
DEFAULTS = {"mostly": 1, "strict_min": False, "strict_max": False, "or_equal": None, "min_value": None,
            "max_value": None, "row_condition": None, "condition_parser": None}
_CONDITION = re.compile(r"""\s*([A-Za-z_][A-Za-z0-9_]*)\s*(==|!=)\s*(?:"([^"\\]*)"|'([^'\\]*)')\s*""")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def bound(v):
    """A between bound as GX's pydantic model reads it (float, then date, then datetime), or
    None when it is none of those plainly."""
    if _is_number(v):
        return float(v)
    if isinstance(v, str):
        try:
            if _DATE.fullmatch(v):
                return date.fromisoformat(v)
            if _DATETIME.fullmatch(v):
                return datetime.fromisoformat(v)
        except ValueError:  # shaped like one, but no such day or time: GX decides what that means
            return None
    return None


@cache
def _regex(pattern: str):
    return re.compile(pattern)


def condition(kw: dict) -> tuple[str, str, str] | None:
    """(column, operator, literal) of a supported row_condition, None when there is none."""
    rc = kw.get("row_condition")
    if rc is None:
        return None
    m = _CONDITION.fullmatch(rc)
    return m.group(1), m.group(2), m.group(3) if m.group(3) is not None else m.group(4)


def unsupported_config(exp: dict) -> str | None:  # noqa: C901, PLR0911, PLR0912 - one rule per kwarg, read top to bottom
    """Why this (resolved) expectation is left to GX, or None when it is evaluated here."""
    t, kw = exp["type"], exp["kwargs"]
    if t not in KWARGS:
        return f"{t} is not evaluated here"
    extra = set(kw) - KWARGS[t]
    if extra:
        return f"{name(exp)}: kwargs {sorted(extra)} are not evaluated here"
    needed = {PAIR: ("column_A", "column_B"), ROW_COUNT: ()}.get(t, ("column",))
    if not all(isinstance(kw.get(col), str) and kw[col] for col in needed):
        return f"{name(exp)}: {', '.join(needed)} must name columns"
    if "row_condition" in kw or "condition_parser" in kw:
        rc = kw.get("row_condition")
        if not isinstance(rc, str) or kw.get("condition_parser") != "pandas" or not _CONDITION.fullmatch(rc):
            return f"{name(exp)}: only `column ==/!= \"text\"` row conditions with the pandas parser"
    if "mostly" in kw and not (_is_number(kw["mostly"]) and 0 <= kw["mostly"] <= 1):
        return f"{name(exp)}: mostly must be a number in [0, 1]"
    for flag in ("strict_min", "strict_max", "or_equal"):
        if kw.get(flag) is not None and not isinstance(kw[flag], bool):
            return f"{name(exp)}: {flag} must be true or false"
    if t == IN_SET:
        vs = kw.get("value_set")
        if not isinstance(vs, list) or not vs or not all(isinstance(v, str) for v in vs):
            return f"{name(exp)}: value_set must be a non-empty list of strings"
    elif t == BETWEEN:
        lo, hi = kw.get("min_value"), kw.get("max_value")
        if lo is None and hi is None:
            return f"{name(exp)}: no bound"
        b = [bound(v) for v in (lo, hi) if v is not None]
        if None in b or len({type(x) for x in b}) != 1:
            return f"{name(exp)}: bounds must both be numbers, dates or timestamps with a zone"
        if any(isinstance(x, datetime) and x.tzinfo is None for x in b):
            return f"{name(exp)}: a timestamp bound needs a zone"
        if len(b) == 2 and b[0] > b[1]:
            return f"{name(exp)}: min_value > max_value"
    elif t == LENGTHS:
        lo, hi = kw.get("min_value"), kw.get("max_value")
        if (lo is None and hi is None) or any(v is not None and (not isinstance(v, int) or isinstance(v, bool))
                                              for v in (lo, hi)):
            return f"{name(exp)}: length bounds must be integers"
        if lo is not None and hi is not None and lo > hi:
            return f"{name(exp)}: min_value > max_value"
    elif t == REGEX:
        if not isinstance(kw.get("regex"), str):
            return f"{name(exp)}: regex must be text"
        try:
            _regex(kw["regex"])
        except re.error:
            return f"{name(exp)}: regex does not compile"
    elif t == REFERENCE:
        if not isinstance(kw.get("entity"), str):
            return f"{name(exp)}: entity must be an entity name"
    elif t == PAIR:
        if kw.get("ignore_row_if") != "either_value_is_missing":
            return f"{name(exp)}: only ignore_row_if=either_value_is_missing"
    elif t == ROW_COUNT and not (isinstance(kw.get("value"), int) and not isinstance(kw["value"], bool)):
        return f"{name(exp)}: value must be an integer"
    return None


# Column families as pandas sees them after gx.frame (decimals already float64 there).
def family(t: pa.DataType) -> str | None:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if t in (pa.int64(), pa.float64()) or pa.types.is_decimal(t):
        return "number"
    if pa.types.is_timestamp(t) and t.tz is not None and t.unit == "us":  # the lake's timestamps
        return "timestamp"
    if pa.types.is_date32(t):
        return "date"
    return None


def unsupported_data(exp: dict, schema: pa.Schema) -> str | None:
    """Why this expectation cannot be evaluated here on columns of these types, or None."""
    t, kw = exp["type"], exp["kwargs"]
    types = {f.name: f.type for f in schema}
    cond = condition(kw)
    if cond and family(types.get(cond[0], pa.null())) != "string":
        return f"{name(exp)}: the row condition's column is not text"
    if t == ROW_COUNT:
        return None
    cols = [kw["column_A"], kw["column_B"]] if t == PAIR else [kw["column"]]
    fams = [family(types[c]) if c in types else None for c in cols]
    if None in fams:
        return f"{name(exp)}: a column is missing or of a type not evaluated here"
    if t == PAIR:
        return None if fams[0] == fams[1] and fams[0] != "string" else f"{name(exp)}: column types differ"
    if t == BETWEEN:
        b = bound(kw["min_value"] if kw.get("min_value") is not None else kw["max_value"])
        want = {float: "number", date: "date", datetime: "timestamp"}[type(b)]
        return None if fams[0] == want else f"{name(exp)}: {want} bounds on a {fams[0]} column"
    return None if fams[0] == "string" else f"{name(exp)}: a {fams[0]} column"


def audit_columns(exps: list[dict]) -> set[str]:
    """The columns a suite reads (its row conditions' too), as gx.frame selects them."""
    cols = {"_op"}
    for exp in exps:
        kw = exp["kwargs"]
        cols |= {kw[k] for k in ("column", "column_A", "column_B") if isinstance(kw.get(k), str)}
        cond = condition(kw) if isinstance(kw.get("row_condition"), str) and _CONDITION.fullmatch(
            kw["row_condition"]) else None
        if cond:
            cols.add(cond[0])
    return cols


@dataclass
class Prepared:
    """One batch, as the evaluator takes it: its rows (the audited columns) and its expectations
    (resolved, in suite order, each with its position in the suite)."""

    table: pa.Table
    tenant_id: str
    expectations: list[tuple[int, dict]]


class _Rows:
    """The batches' rows end to end, with each row's batch and position in it; column views as
    pandas holds them, built once per column."""

    def __init__(self, batches: list[Prepared]):
        sizes = np.array([b.table.num_rows for b in batches], dtype=np.int64)
        self.n = len(batches)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.batch = np.repeat(np.arange(self.n), sizes)
        self.row = np.arange(int(self.offsets[-1])) - self.offsets[self.batch]
        self.table = pa.concat_tables([b.table for b in batches])
        self._views: dict = {}

    def _view(self, key, build):
        if key not in self._views:
            self._views[key] = build()
        return self._views[key]

    def type(self, col: str) -> pa.DataType:
        return self.table.schema.field(col).type

    def null(self, col: str) -> np.ndarray:
        return self._view(("null", col), lambda: np.asarray(pc.is_null(self.table[col], nan_is_null=True)))

    def batch_has_null(self, col: str) -> np.ndarray:
        """Per batch: does the column hold a null anywhere (pandas then holds ints as float64)?"""
        return self._view(("batch_null", col),
                          lambda: np.bincount(self.batch[self.null(col)], minlength=self.n) > 0)

    def objects(self, col: str) -> np.ndarray:
        return self._view(("obj", col), lambda: self.table[col].to_numpy())

    def numbers(self, col: str) -> np.ndarray:
        """float64, as gx.frame casts decimals and pandas promotes ints against a float bound (an int
        past 2**53 rounds there as it does in pandas; a safe cast would refuse it)."""
        unsafe = pa.types.is_integer(self.type(col))
        return self._view(("num", col), lambda: pc.cast(self.table[col], pa.float64(), safe=not unsafe).to_numpy())

    def exact(self, col: str) -> np.ndarray:
        """Timestamps as microseconds, dates as days: exact integers (nulls are masked apart)."""
        as_int = pa.int64() if pa.types.is_timestamp(self.type(col)) else pa.int32()
        return self._view(("exact", col),
                          lambda: pc.fill_null(self.table[col].cast(as_int), 0).to_numpy().astype(np.int64))

    def condition(self, kw: dict) -> np.ndarray:
        cond = condition(kw)
        if cond is None:
            return np.ones(len(self.batch), dtype=bool)
        col, op, literal = cond
        return self._view(("cond", cond), lambda: (self.objects(col) == literal) if op == "==" else
                          ~(self.objects(col) == literal))


def _exact_bound(b) -> int:
    """A date bound as days, a datetime bound as microseconds since the epoch."""
    if isinstance(b, datetime):
        delta = b - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return (b - date(1970, 1, 1)).days


class _Shown:
    """The values of rows `idx` (every unexpected row of one expectation, all batches) as keys to
    count and sort by, and as GX's JSON shows them: pandas scalars (Series items, .at) or, with
    `numpy`, the items of Series.values. Converted once, then sliced per batch."""

    def __init__(self, rows: _Rows, col: str, idx: np.ndarray, numpy: bool = False):
        t = rows.type(col)
        fam = family(t)
        self.floats = None
        if fam == "number":
            raw = rows.numbers(col)[idx]
            self.keys = self.shown = raw.tolist()
            if t == pa.int64():  # int64 in pandas unless the batch holds a null: then float64
                self.ints = pc.fill_null(rows.table[col], 0).to_numpy()[idx].tolist()  # exact past 2**53
                self.floats = rows.batch_has_null(col)
        elif fam == "timestamp" and numpy:  # datetime64[us], no zone
            micros = rows.exact(col)[idx]
            self.keys = micros.tolist()
            self.shown = np.datetime_as_string(micros.astype("datetime64[us]")).tolist()
        else:
            self.keys = rows.table[col].take(pa.array(idx, pa.int64())).to_pylist() if len(idx) else []
            self.shown = [k.isoformat() for k in self.keys] if fam in ("timestamp", "date") else self.keys

    def slice(self, lo: int, hi: int, b: int) -> tuple[list, list]:
        if self.floats is not None and not self.floats[b]:
            ints = self.ints[lo:hi]
            return ints, ints
        return self.keys[lo:hi], self.shown[lo:hi]


def _percentages(element_count: int, nonnull: int | None, unexpected: int) -> dict:
    out = {"unexpected_percent_total": None, "missing_percent": None, "unexpected_percent_nonmissing": None}
    if element_count > 0:
        out["unexpected_percent_total"] = unexpected / element_count * 100
        if nonnull is None:
            out["unexpected_percent_nonmissing"] = out["unexpected_percent_total"]
        else:
            out["missing_percent"] = (element_count - nonnull) / element_count * 100
            out["unexpected_percent_nonmissing"] = unexpected / nonnull * 100 if nonnull > 0 else None
    return out


def _hashable(k):
    return tuple(k) if isinstance(k, list) else k


def _map_result(element_count: int, nonnull: int | None, unexpected: int, keys: list, listed: list,
                index_list: list) -> dict:
    """great_expectations.expectations.expectation._format_map_output, COMPLETE result format."""
    pct = _percentages(element_count, nonnull, unexpected)
    res = {"element_count": element_count, "unexpected_count": unexpected,
           "unexpected_percent": pct["unexpected_percent_nonmissing"],
           "partial_unexpected_list": listed[:PARTIAL], "unexpected_index_column_names": [ROW]}
    if nonnull is not None:
        res |= {"missing_count": element_count - nonnull, "missing_percent": pct["missing_percent"],
                "unexpected_percent_total": pct["unexpected_percent_total"],
                "unexpected_percent_nonmissing": pct["unexpected_percent_nonmissing"]}
    if keys:
        hashed = [_hashable(k) for k in keys]
        shown = dict(zip(hashed, listed, strict=True))
        counted = sorted(Counter(hashed).most_common(PARTIAL), key=lambda x: (-x[1], x[0]))
        res["partial_unexpected_counts"] = [{"value": shown[k], "count": c} for k, c in counted]
    else:
        res["partial_unexpected_counts"] = []
    res["partial_unexpected_index_list"] = index_list[:PARTIAL]
    res["unexpected_list"] = listed
    res["unexpected_index_list"] = index_list
    return res


def _success(considered: int, unexpected: int, mostly) -> bool:
    """Vacuous on nothing considered; else the share of expected rows against `mostly`."""
    if considered == 0:
        return True
    return (float(considered) - float(unexpected)) / float(considered) >= mostly


def render_config(exp: dict) -> dict:
    """The expectation_config GX writes into a result, from our resolved expectation (GX's
    pydantic model reads numbers as float, dates and timestamps back as ISO text)."""
    kw = {"batch_id": BATCH_ID}
    for k, v in exp["kwargs"].items():
        if k in DEFAULTS and v == DEFAULTS[k]:  # GX writes its model with exclude_defaults
            continue
        if k == "row_condition":
            v = {"pass_through_filter": v, "type": "pass_through"}
        elif exp["type"] == BETWEEN and k in ("min_value", "max_value") and v is not None:
            b = bound(v)
            v = b if isinstance(b, float) else b.isoformat()
        elif k == "mostly":
            v = float(v)
        kw[k] = v
    return {"type": exp["type"], "kwargs": kw, "meta": exp.get("meta") or {}, "severity": "critical"}


class _Expectation:
    """One position of the suite over every batch it applies to (kws[b] is None where not)."""

    def __init__(self, rows: _Rows, kws: list[dict | None]):
        self.rows, self.kws = rows, kws
        self.on = np.array([kw is not None for kw in kws])
        self.first = next(kw for kw in kws if kw is not None)

    def domain(self) -> np.ndarray:
        """Rows of the batches this applies to that pass their row condition."""
        rows = self.rows
        if len({kw.get("row_condition") for kw in self.kws if kw is not None}) == 1:
            return self.on[rows.batch] & rows.condition(self.first)
        out = np.zeros(len(rows.batch), dtype=bool)
        for b, kw in enumerate(self.kws):
            if kw is not None:
                lo, hi = rows.offsets[b], rows.offsets[b + 1]
                out[lo:hi] = rows.condition(kw)[lo:hi]
        return out

    def per_row(self, fn, dtype) -> np.ndarray:
        """A parameter that may differ by batch (fn of the batch's kwargs), for each row."""
        per_batch = np.array([fn(kw) if kw is not None else 0 for kw in self.kws], dtype=dtype)
        return per_batch[self.rows.batch]

    def flag(self, key: str) -> np.ndarray:
        return self.per_row(lambda kw: bool(kw.get(key)), bool)

    def within(self, values: np.ndarray, edge: Callable, dtype) -> np.ndarray:
        """min_value <= values <= max_value per row, strict where asked; a missing bound holds."""
        has_lo = self.per_row(lambda kw: kw.get("min_value") is not None, bool)
        has_hi = self.per_row(lambda kw: kw.get("max_value") is not None, bool)
        lo = self.per_row(lambda kw: edge(kw["min_value"]) if kw.get("min_value") is not None else 0, dtype)
        hi = self.per_row(lambda kw: edge(kw["max_value"]) if kw.get("max_value") is not None else 0, dtype)
        above = np.where(self.flag("strict_min"), values > lo, values >= lo) | ~has_lo
        below = np.where(self.flag("strict_max"), values < hi, values <= hi) | ~has_hi
        return above & below


def _in_set(ex: _Expectation, col: str) -> np.ndarray:
    """Rows whose value is in their batch's value_set."""
    rows = ex.rows
    column = rows.table[col]
    sets = [tuple(kw["value_set"]) if kw is not None else None for kw in ex.kws]
    distinct = {s for s in sets if s is not None}

    def member(s):
        return np.asarray(pc.fill_null(pc.is_in(column, value_set=pa.array(s, column.type)), False))

    if len(distinct) == 1:
        return member(next(iter(distinct)))
    if all(len(s) == 1 for s in distinct):  # [$tenant_id]: one value, a different one per batch
        return rows.objects(col) == ex.per_row(lambda kw: kw["value_set"][0], object)
    ok = np.zeros(len(rows.batch), dtype=bool)
    for s in distinct:
        ok |= np.array([x == s for x in sets])[rows.batch] & member(s)
    return ok


def _between(ex: _Expectation, col: str) -> np.ndarray:
    rows = ex.rows
    if family(rows.type(col)) == "number":
        return ex.within(rows.numbers(col), bound, np.float64)
    return ex.within(rows.exact(col), lambda v: _exact_bound(bound(v)), np.int64)


def _lengths(ex: _Expectation, col: str) -> np.ndarray:
    lengths = pc.fill_null(pc.utf8_length(ex.rows.table[col]), 0).to_numpy().astype(np.int64)
    return ex.within(lengths, int, np.int64)


def _matches(ex: _Expectation, col: str, considered: np.ndarray) -> np.ndarray:
    # Python's re, as pandas' str.contains means it (`$` matches before a final newline, `\d`
    # any Unicode digit): RE2 would differ, and the rows checked here are few.
    values, batch = ex.rows.objects(col), ex.rows.batch
    ok = np.ones(len(values), dtype=bool)
    for i in np.flatnonzero(considered):
        ok[i] = _regex(ex.kws[batch[i]]["regex"]).search(values[i]) is not None
    return ok


def _unique(ex: _Expectation, col: str, considered: np.ndarray) -> np.ndarray:
    """Rows whose value appears once among their batch's considered rows."""
    idx = np.flatnonzero(considered)
    ok = np.ones(len(considered), dtype=bool)
    if len(idx):
        values = ex.rows.table[col].take(pa.array(idx))
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            # a hash table of the text (Arrow), not a sort of Python strings: 10x faster on 200k ids
            codes = pc.dictionary_encode(values.combine_chunks(), null_encoding="encode").indices
            codes = codes.to_numpy(zero_copy_only=False).astype(np.int64)
        else:
            _, codes = np.unique(ex.rows.objects(col)[idx], return_inverse=True)
        key = ex.rows.batch[idx] * (int(codes.max()) + 1) + codes
        _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        ok[idx] = counts[inverse] == 1
    return ok


def _referenced(ex: _Expectation, col: str, considered: np.ndarray, tenants: list[str],
                published: Callable[[str, str], set[str]], errors: dict[int, str]) -> np.ndarray:
    """Rows whose value is an id already published for their tenant (tenantlake.references).
    The lookup is asked once per tenant and entity, and only when there is a value to check."""
    rows = ex.rows
    values = rows.objects(col)
    ok = np.ones(len(values), dtype=bool)
    ids: dict[tuple[str, str], set[str] | None] = {}
    for i in np.flatnonzero(considered):
        b = int(rows.batch[i])
        key = (tenants[b], ex.kws[b]["entity"])
        if key not in ids:
            try:
                ids[key] = published(*key)
            except Exception as e:  # noqa: BLE001 - fail closed: this batch fails, the others go on
                ids[key] = None
                errors.setdefault(b, f"{name({'type': REFERENCE, 'kwargs': ex.kws[b]})}: looking up the "
                                     f"published ids raised {type(e).__name__}")
        known = ids[key]
        ok[i] = known is not None and values[i] in known
    return ok


def evaluate(batches: list[Prepared], published: Callable[[str, str], set[str]]) -> list[dict | str]:
    """Per batch, GX's result JSON for its expectations (values not yet redacted), or why its
    audit could not run. The batches' columns have the same types (the caller groups them so)."""
    rows = _Rows(batches)
    tenants = [b.tenant_id for b in batches]
    by_position = [dict(b.expectations) for b in batches]
    results: list[dict[int, dict]] = [{} for _ in batches]
    errors: dict[int, str] = {}
    for pos in sorted({p for d in by_position for p in d}):
        exps = [d.get(pos) for d in by_position]
        ex = _Expectation(rows, [e["kwargs"] if e is not None else None for e in exps])
        t = next(e for e in exps if e is not None)["type"]
        configs: dict[bytes, dict] = {}  # the same expectation renders the same for every batch
        for b, (success, result) in _evaluate_one(ex, t, tenants, published, errors).items():
            key = orjson.dumps(exps[b], option=orjson.OPT_SORT_KEYS)
            if key not in configs:
                configs[key] = render_config(exps[b])
            config = configs[key]
            config = {**config, "kwargs": dict(config["kwargs"])}  # each result its own, to be safe to edit
            results[b][pos] = {"success": success, "expectation_config": config, "result": result,
                               "meta": {}, "exception_info": dict(NO_EXCEPTION)}
    out: list[dict | str] = []
    for b, batch in enumerate(batches):
        if b in errors:
            out.append(errors[b])
            continue
        listed = [results[b][pos] for pos, _ in batch.expectations]
        good = sum(r["success"] for r in listed)
        out.append({"success": good == len(listed), "results": listed, "suite_parameters": {},
                    "statistics": {"evaluated_expectations": len(listed), "successful_expectations": good,
                                   "unsuccessful_expectations": len(listed) - good,
                                   "success_percent": good / len(listed) * 100 if listed else None},
                    "meta": {}, "id": None})
    return out


def _evaluate_one(ex: _Expectation, t: str, tenants: list[str], published,
                  errors: dict[int, str]) -> dict[int, tuple[bool, dict]]:
    """Per batch this expectation applies to: (success, GX's result fields)."""
    rows = ex.rows
    domain = ex.domain()
    element = np.bincount(rows.batch[domain], minlength=rows.n)
    if t == ROW_COUNT:
        return {b: (int(element[b]) == kw["value"], {"observed_value": int(element[b])})
                for b, kw in enumerate(ex.kws) if kw is not None}
    if t == PAIR:
        cols = [ex.first["column_A"], ex.first["column_B"]]
        considered = domain & ~rows.null(cols[0]) & ~rows.null(cols[1])
        a, b_ = (rows.numbers(c) if family(rows.type(c)) == "number" else rows.exact(c) for c in cols)
        unexpected = considered & ~np.where(ex.flag("or_equal"), a >= b_, a > b_)
    else:
        cols = [ex.first["column"]]
        col = cols[0]
        if t == NOT_NULL:
            considered, unexpected = domain, domain & rows.null(col)
        else:
            considered = domain & ~rows.null(col)
            ok = {UNIQUE: lambda: _unique(ex, col, considered),
                  IN_SET: lambda: _in_set(ex, col),
                  BETWEEN: lambda: _between(ex, col),
                  REGEX: lambda: _matches(ex, col, considered),
                  LENGTHS: lambda: _lengths(ex, col),
                  REFERENCE: lambda: _referenced(ex, col, considered, tenants, published, errors)}[t]()
            unexpected = considered & ~ok
    nonnull = np.bincount(rows.batch[considered], minlength=rows.n)
    bad = np.flatnonzero(unexpected)
    cuts = np.searchsorted(bad, rows.offsets)
    if t == NOT_NULL:
        scalars = pairs = []
    else:  # pandas scalars (.at) for the index list; a pair's unexpected values come from .values
        scalars = [_Shown(rows, c, bad) for c in cols]
        listed_idx = np.concatenate([bad[cuts[b]:cuts[b + 1]][:MAX_RESULT_RECORDS] for b in range(rows.n)])
        pairs = [_Shown(rows, c, listed_idx, numpy=True) for c in cols] if t == PAIR else []
        listed_cuts = np.concatenate([[0], np.cumsum(np.minimum(np.diff(cuts), MAX_RESULT_RECORDS))])
    out = {}
    for b, kw in enumerate(ex.kws):
        if kw is None:
            continue
        lo, hi = int(cuts[b]), int(cuts[b + 1])
        n_elem, n_bad = int(element[b]), hi - lo
        positions = rows.row[bad[lo:hi]].tolist()
        if t == NOT_NULL:  # the values are the nulls themselves
            keys = listed = [None] * min(n_bad, MAX_RESULT_RECORDS)
            index_list = [{col: None, ROW: p} for p in positions]
            out[b] = (_success(n_elem, n_bad, kw.get("mostly", 1)),
                      _map_result(n_elem, None, n_bad, keys, listed, index_list))
            continue
        shown = [sc.slice(lo, hi, b)[1] for sc in scalars]
        if t == PAIR:
            index_list = [{cols[0]: x, ROW: p, cols[1]: y} for x, y, p in zip(*shown, positions, strict=True)]
            both = [pa_.slice(int(listed_cuts[b]), int(listed_cuts[b + 1]), b) for pa_ in pairs]
            keys = [[x, y] for x, y in zip(both[0][0], both[1][0], strict=True)]
            listed = [[x, y] for x, y in zip(both[0][1], both[1][1], strict=True)]
        else:
            index_list = [{col: x, ROW: p} for x, p in zip(shown[0], positions, strict=True)]
            keys, listed = scalars[0].slice(lo, min(hi, lo + MAX_RESULT_RECORDS), b)
        n_cons = int(nonnull[b])
        out[b] = (_success(n_cons, n_bad, kw.get("mostly", 1)),
                  _map_result(n_elem, n_cons, n_bad, keys, listed, index_list))
    return out
