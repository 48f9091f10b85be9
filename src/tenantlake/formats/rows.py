"""The lake's row layout and the precise, one-row-at-a-time conversion from a DynamoDB image.

Every row carries the contract's columns plus metadata: who it belongs to (`tenant_id`, from the
registry, never from the item), what happened (`_op`), when (`_event_ts`, `_sequence`), and where
it came from (`_export_id`, `_source_file`, `_line`).

Drift policy as the decoder applies it (tenantlake.contracts states it for every layer):
  * `_extra` holds the item's undeclared parts, as DynamoDB JSON exactly as sent, nested as in the
    item: a new top-level attribute under its name, a new field of a declared map inside that
    map ({"bureau": {"M": {"history": {"L": [...]}}}}). A declared list of maps keeps one entry per
    element, {"M": {}} where an element has nothing undeclared, so positions survive:
    {"concessions": {"L": [{"M": {}}, {"M": {"waived": {"BOOL": true}}}]}}. An element of another
    shape than the declared one (an S among maps) is null in the column and kept whole at its
    position: {"concessions": {"L": [{"M": {}}, {"S": "waived fee"}]}}. Text is canonical
    (keys sorted at every level, no spaces); null when nothing is undeclared. Merging `_extra` into
    the declared attributes (maps key by key, lists position by position) gives the item's values
    back; the DynamoDB type a coerced value was sent as, and digits of a second past microseconds,
    are not kept per row (the drift log counts them) and an empty declared map reads as one whose
    fields are all absent: the line as sent is the only byte-exact record.
  * A declared N sent as S holding number text, or a declared S sent as N, is coerced when the
    value fits the column exactly (the N text as sent becomes the string), and recorded as drift
    of type "S->N" / "N->S"; so is a declared SS sent as an L of distinct S ("L->SS", order as
    sent); anything else of the wrong type is `type_mismatch`, naming the path
    and both types. Enum values are not judged here (the quality suite does).
  * A timestamp finer than microseconds is cut to them, recorded as "truncated" when a digit cut
    is not 0.
  * The partition key must be a non-empty S: `missing_key`, `empty_key`, `key_type`; an
    incremental line whose Keys lack the key (`missing_key`), name more than it, or disagree with
    its image is `key_mismatch`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import orjson
import pyarrow as pa

from tenantlake.contracts import SHAPES, Entity
from tenantlake.formats.attributes import DECODERS, NUMBER, BadValue, envelope, number, plain_json, value
from tenantlake.formats.drift import COERCED, NEW_ATTRIBUTE, NEW_FIELD, NEW_SHAPE, TRUNCATED, step

# An item attribute naming its own tenant; if present it must agree with the registry's tenant.
TENANT_FIELDS = ("tenantId", "tenant_id", "agencyId")

# Which DynamoDB type key each contract kind accepts (NULL is accepted by every kind).
TYPE_KEY = {"string": "S", "int": "N", "bool": "BOOL", "money": "N", "rate": "N", "timestamp": "S",
            "epoch_ms": "N", "date": "S", "string_set": "SS", "json": None,
            "decimal": "N"}  # decimal: a number inside a declared shape, fitted to its Arrow type

META_HEAD = [pa.field("tenant_id", pa.string(), nullable=False)]
META_TAIL = [
    pa.field("_extra", pa.string()),
    pa.field("_op", pa.string(), nullable=False),
    pa.field("_event_ts", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("_sequence", pa.string()),  # stream sequence numbers, zero-padded to 40 digits
    pa.field("_export_id", pa.string(), nullable=False),
    pa.field("_source_file", pa.string(), nullable=False),
    pa.field("_line", pa.int32(), nullable=False),
]
# A table with no contract is still ingested losslessly: its keys and the whole item as JSON.
UNCONTRACTED = [pa.field("_keys", pa.string()), pa.field("_item", pa.string())]

QUARANTINE_SCHEMA = pa.schema([
    pa.field("tenant_id", pa.string(), nullable=False),
    pa.field("_export_id", pa.string(), nullable=False),
    pa.field("_source_file", pa.string(), nullable=False),
    pa.field("_line", pa.int32(), nullable=False),
    pa.field("_reason", pa.string(), nullable=False),  # a reason code, e.g. n_precision
    pa.field("_detail", pa.string(), nullable=False),
    pa.field("_raw", pa.binary()),  # the line or record as it came (a Pipes batch's record: re-serialised)
])


def lake_schema(entity: Entity | None) -> pa.Schema:
    body = list(entity.schema) if entity else UNCONTRACTED
    # Contract columns are declared non-null for keys only; a remove row carries just its key.
    body = [f.with_nullable(True) if f.name != "id" else f for f in body]
    return pa.schema(META_HEAD + body + META_TAIL)


def dumps(v) -> str:
    return orjson.dumps(plain_json(v), option=orjson.OPT_SORT_KEYS).decode()


def extra_json(extra: dict) -> str:
    """The canonical text of `_extra` (the fast path builds the same bytes column-wise)."""
    return orjson.dumps(extra, option=orjson.OPT_SORT_KEYS).decode()


def _fit_decimal(v: Decimal, t: pa.Decimal128Type) -> Decimal:
    if v.as_tuple().exponent < -t.scale and v != v.quantize(Decimal(1).scaleb(-t.scale)):
        raise BadValue("n_scale", f"{v} has more than {t.scale} decimal places")
    if v.adjusted() >= t.precision - t.scale:
        raise BadValue("n_overflow", f"{v} does not fit decimal({t.precision},{t.scale})")
    return v.quantize(Decimal(1).scaleb(-t.scale))


# A fraction of a second finer than microseconds with a digit that is not 0 (.NET writes 7 digits):
# the lake and Redshift hold microseconds, so the value is cut to them and the cut recorded as drift.
SUB_MICROSECOND = re.compile(r"[.,]\d{6}\d*[1-9]")


# A time the lake holds is one every reader can hold: years 1 to 9999 in UTC (Python's datetime;
# pandas, pyarrow's to_pylist and the BI drivers built on them fail past it). Outside, the value is
# quarantined: an epoch in microseconds sent where milliseconds are declared lands in year 57857.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FIRST_TIME, LAST_TIME = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
OUT_OF_RANGE = "timestamp_out_of_range"


def _timestamp(text: str) -> datetime:
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise BadValue("timestamp_invalid", f"{text[:40]!r} is not ISO-8601") from None
    if ts.tzinfo is None:
        raise BadValue("timestamp_invalid", f"{text[:40]!r} has no time zone")
    try:
        return ts.astimezone(UTC)
    except OverflowError:
        raise BadValue(OUT_OF_RANGE, f"{text[:40]!r} is outside years 1 to 9999 in UTC") from None


def _epoch_ms(ms: int) -> datetime:
    try:
        return EPOCH + timedelta(milliseconds=ms)  # exact, where a float of seconds rounds
    except OverflowError:
        raise BadValue(OUT_OF_RANGE, f"{ms} ms since the epoch is outside years 1 to 9999 (microseconds "
                                     "sent for milliseconds?)") from None


# AppSync's AWSDate: YYYY-MM-DD, optionally with a zone offset (Z, +hh:mm or +hh:mm:ss), which the
# calendar date is kept without. Python's fromisoformat also reads 19900517 and 1990-W20-4: AWSDate
# has neither.
AWS_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d)?)?", re.ASCII)


def _date(text: str) -> date:
    found = AWS_DATE.fullmatch(text)
    try:
        if found:
            return date.fromisoformat(found.group(1))
    except ValueError:
        pass
    raise BadValue("date_invalid", f"{text[:30]!r} is not an AWSDate (YYYY-MM-DD, optionally with a zone offset)")


def integer(v: Decimal) -> int:
    if v != v.to_integral_value() or not -(2**63) <= v < 2**63:
        raise BadValue("n_not_integer", f"{v} is not a 64-bit integer")
    return int(v)


def _finish(kind: str, t: pa.DataType, v):
    """A decoded value of the declared DynamoDB type as its column value."""
    if kind in ("string", "bool", "string_set"):
        return v
    if kind in ("money", "rate", "decimal"):
        return _fit_decimal(v, t)
    if kind == "int":
        return integer(v)
    if kind == "epoch_ms":
        return _epoch_ms(integer(v))
    if kind == "timestamp":
        return _timestamp(v)
    if kind == "date":
        return _date(v)
    raise AssertionError(kind)


def _sent(key: str, v) -> str:
    """What was sent, short, for a detail: S '19.99x', BOOL true, M."""
    if key in ("S", "N"):
        return f"{key} {v[:40]!r}"
    if key in ("BOOL", "NULL"):
        return f"{key} {json.dumps(v)[:10]}"
    return key


def _at(path: str, e: BadValue) -> BadValue:
    return BadValue(e.code, f"attribute {path!r}: {e.detail}")


class _Image:
    """One image against its contract: the typed values, the undeclared parts (`extra`, as sent)
    and the drift seen, as (path, type, what); errors name the attribute path."""

    def __init__(self):
        self.drift: list[tuple[str, str, str]] = []

    def checked(self, av, path: str, depth: int):
        try:
            return value(av, depth)
        except BadValue as e:
            raise _at(path, e) from None

    def undeclared(self, av, path: str, dpath: str, depth: int, what: str):
        self.checked(av, path, depth)
        self.drift.append((dpath, next(iter(av)), what))
        return av

    def scalar(self, kind: str, t: pa.DataType, av, path: str, dpath: str, depth: int):
        try:
            key, v = envelope(av, depth)
            decoded = DECODERS[key](v, depth)
        except BadValue as e:
            raise _at(path, e) from None
        if key == "NULL":
            return None
        if kind == "json":
            return dumps(decoded)
        want, coerced = TYPE_KEY[kind], None
        if (key, want) == ("L", "SS"):  # an app that writes its set as a list (Amplify writes L)
            if not v or not all(isinstance(x, dict) and list(x) == ["S"] for x in v) or \
                    len({x["S"] for x in v}) != len(v):
                raise BadValue("type_mismatch", f"attribute {path!r}: expected SS, got an L that is not a set "
                                                "of strings (an element that is not S, a duplicate, or none)")
            self.drift.append((dpath, "L->SS", COERCED))
            return [x["S"] for x in v]
        if key != want:
            if (key, want) not in (("S", "N"), ("N", "S")) or key == "S" and not NUMBER.fullmatch(v):
                raise BadValue("type_mismatch", f"attribute {path!r}: expected {want}, got {_sent(key, v)}")
            coerced = f"{key}->{want}"
            decoded = v  # N -> S: the number's text as sent; S -> N: parsed below
        try:
            out = _finish(kind, t, number(decoded) if coerced == "S->N" else decoded)
        except BadValue as e:
            if coerced is None:
                raise _at(path, e) from None
            raise BadValue("type_mismatch", f"attribute {path!r}: expected {want}, got {_sent(key, v)} "
                                            f"({e.detail})") from None
        if coerced:
            self.drift.append((dpath, coerced, COERCED))
        if kind == "timestamp" and SUB_MICROSECOND.search(v):
            self.drift.append((dpath, key, TRUNCATED))
        return out

    def shaped(self, av, t: pa.DataType, path: str, dpath: str, depth: int):
        """A declared M or L (or a leaf inside one): (its column value, its undeclared part or None)."""
        if not (pa.types.is_struct(t) or pa.types.is_list(t)):
            return self.scalar("decimal" if pa.types.is_decimal(t) else "string", t, av, path, dpath, depth), None
        want = "M" if pa.types.is_struct(t) else "L"
        try:
            key, v = envelope(av, depth)
            if key != want:
                DECODERS[key](v, depth)  # a broken value keeps its own reason
        except BadValue as e:
            raise _at(path, e) from None
        if key == "NULL":
            return None, None
        if key != want:
            raise BadValue("type_mismatch", f"attribute {path!r}: expected {want}, got {_sent(key, v)}")
        if want == "M":
            if not isinstance(v, dict):
                raise BadValue("type_mismatch", f"attribute {path!r}: M must be a JSON object")
            fields = {f.name: f.type for f in t}
            out, extra = dict.fromkeys(fields), {}
            for name, child in v.items():
                sub, dsub = f"{path}.{name}", step(dpath, name)
                if name in fields:
                    out[name], x = self.shaped(child, fields[name], sub, dsub, depth + 1)
                    if x is not None:
                        extra[name] = x
                else:
                    extra[name] = self.undeclared(child, sub, dsub, depth + 1, NEW_FIELD)
            return out, ({"M": extra} if extra else None)
        if not isinstance(v, list):
            raise BadValue("type_mismatch", f"attribute {path!r}: L must be a JSON array")
        pairs = [self.element(x, t.value_type, f"{path}[{i}]", f"{dpath}[]", depth + 1) for i, x in enumerate(v)]
        if all(x is None for _, x in pairs):
            return [val for val, _ in pairs], None
        # one entry per element, so that merging back is positional and exact
        return [val for val, _ in pairs], {"L": [x if x is not None else {"M": {}} for _, x in pairs]}


    def element(self, av, t: pa.DataType, path: str, dpath: str, depth: int):
        """One element of a declared list. An element of another shape than the declared one (an S
        among maps, a map among strings) is a new shape: null in the column, kept whole in `_extra`
        at its position. A scalar of another scalar type is a type change, judged as anywhere."""
        try:
            return self.shaped(av, t, path, dpath, depth)
        except BadValue as e:
            want = "M" if pa.types.is_struct(t) else "L" if pa.types.is_list(t) else None
            sent = next(iter(av)) if isinstance(av, dict) and len(av) == 1 else None
            if e.code != "type_mismatch" or sent is None or sent == want or want is None and sent not in ("M", "L"):
                raise
        return None, self.undeclared(av, path, dpath, depth, NEW_SHAPE)


def attribute_value(kind: str, t: pa.DataType, av, name: str) -> tuple[object, object]:
    """One declared attribute's typed value as its column value, and the part of it the contract
    does not declare (None when all of it is declared), exactly as a new export's value converts
    (promotion fills a new column of old rows this way); BadValue when it does not convert."""
    walk = _Image()
    if kind in SHAPES:
        return walk.shaped(av, t, name, name, 1)
    return walk.scalar(kind, t, av, name, name, 1), None


def _key(name: str, av) -> str:
    try:
        key, v = envelope(av)
        DECODERS[key](v, 1)
    except BadValue as e:
        raise _at(name, e) from None
    if key != "S":
        raise BadValue("key_type", f"attribute {name!r}: the partition key must be S, got {_sent(key, v)}")
    if v == "":
        raise BadValue("empty_key", f"attribute {name!r}: the partition key is the empty string")
    return v


def key_of(entity: Entity, image: dict | None, keys: dict | None) -> str:
    """The item's partition key from its image and, on change lines, its Keys; they must agree."""
    name = entity.key.name
    if keys is not None:  # a change line's Keys is the table's whole primary key, and only that
        if name not in keys:
            raise BadValue("missing_key", f"Keys has no {name!r}")
        if len(keys) > 1:
            raise BadValue("key_mismatch", f"Keys holds {str(sorted(keys))[:80]}, but the contract's key is {name!r} "
                                           "alone (a table keyed otherwise cannot be merged by it)")
    found = [(where, _key(name, doc[name])) for where, doc in (("the image", image), ("Keys", keys))
             if doc is not None and name in doc]
    if not found:
        raise BadValue("missing_key", f"the item has no {name!r}")
    if len(found) == 2 and found[0][1] != found[1][1]:
        raise BadValue("key_mismatch", f"Keys.{name} is {found[1][1][:60]!r} but the image's {name} "
                                       f"is {found[0][1][:60]!r}")
    return found[0][1]


def _own_tenant(image: dict | None, tenant_id: str) -> None:
    """An item naming its own tenant must name the one it was exported from (invariant 1)."""
    for field in TENANT_FIELDS:
        if image and field in image:
            try:
                own = value(image[field])
            except BadValue as e:
                raise _at(field, e) from None
            if own != tenant_id:
                raise BadValue("tenant_mismatch", f"the item says {field}={str(own)[:40]!r}, "
                                                  f"but it was exported from tenant {tenant_id!r}")


def image_row(entity: Entity | None, image: dict | None, keys: dict | None,
              tenant_id: str) -> tuple[dict, list[tuple[str, str, str]]]:
    """An item image (typed attributes) as a lake row's body, and the drift it showed as
    (path, type, what); BadValue says why it cannot be a row."""
    if image is not None and not isinstance(image, dict):
        raise BadValue("not_an_item", "an item image must be a JSON object")
    if keys is not None and not isinstance(keys, dict):
        raise BadValue("not_an_export_line", "Keys must be a JSON object")
    _own_tenant(image, tenant_id)
    if entity is None:
        return {"_keys": dumps(value({"M": keys})) if keys else None,
                "_item": dumps(value({"M": image})) if image is not None else None}, []
    key = entity.key
    row: dict = {key.column: key_of(entity, image, keys)}
    walk, extra, contract = _Image(), {}, entity.by_name
    for name, av in (image or {}).items():
        attr = contract.get(name)
        if attr is key:
            continue
        if attr is None:
            extra[name] = walk.undeclared(av, name, step("", name), 1, NEW_ATTRIBUTE)
        elif attr.kind in SHAPES:
            row[attr.column], x = walk.shaped(av, attr.arrow_type, name, name, 1)
            if x is not None:
                extra[name] = x
        else:
            row[attr.column] = walk.scalar(attr.kind, attr.arrow_type, av, name, name, 1)
    if image is not None:
        missing = [a.name for a in entity.attributes if not a.nullable and row.get(a.column) is None]
        if missing:
            raise BadValue("missing_required", f"required attribute {missing[0]!r} is missing or NULL")
    row["_extra"] = extra_json(extra) if extra else None
    return row, walk.drift


# Reasons that say whose item a change is, or that it is no item: a remove is refused for these too.
WHOSE_ITEM = ("missing_key", "empty_key", "key_type", "key_mismatch", "tenant_mismatch", "not_an_item",
              "not_an_export_line")


def change_row(entity: Entity | None, image: dict | None, keys: dict | None, tenant_id: str,
               remove: bool) -> tuple[dict, list[tuple[str, str, str]]]:
    """image_row for a change line or stream record. A delete needs only its key: an old image
    holding a value the contract refuses (quarantined when it was written) must not keep a deleted
    item alive, so such a remove is published as a Keys-only one (the refused values stay in that
    earlier quarantine row)."""
    try:
        return image_row(entity, image, keys, tenant_id)
    except BadValue as e:
        if not remove or image is None or e.code in WHOSE_ITEM:
            raise
        return image_row(entity, None, keys, tenant_id)
