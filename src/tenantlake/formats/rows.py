"""The lake's row layout and the precise, one-row-at-a-time conversion from a DynamoDB image.

Every row carries the contract's columns plus metadata: who it belongs to (`tenant_id`, from the
registry, never from the item), what happened (`_op`), when (`_event_ts`, `_sequence`), and where
it came from (`_export_id`, `_source_file`, `_line`). Attributes the contract does not know land
in `_extra` as JSON, so schema drift loses nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import orjson
import pyarrow as pa

from tenantlake.contracts import SHAPES, Entity
from tenantlake.formats.attributes import BadValue, plain_json, value

# An item attribute naming its own tenant; if present it must agree with the registry's tenant.
TENANT_FIELDS = ("tenantId", "tenant_id", "agencyId")

# Which DynamoDB type key each contract kind accepts (NULL is accepted by every kind).
TYPE_KEY = {"string": "S", "int": "N", "bool": "BOOL", "money": "N", "rate": "N", "timestamp": "S",
            "epoch_ms": "N", "date": "S", "string_set": "SS", "json": None}

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
    pa.field("_raw", pa.binary()),  # the line as it came, byte for byte
])


def lake_schema(entity: Entity | None) -> pa.Schema:
    body = list(entity.schema) if entity else UNCONTRACTED
    # Contract columns are declared non-null for keys only; a remove row carries just its key.
    body = [f.with_nullable(True) if f.name != "id" else f for f in body]
    return pa.schema(META_HEAD + body + META_TAIL)


def dumps(v) -> str:
    return orjson.dumps(plain_json(v), option=orjson.OPT_SORT_KEYS).decode()


def _fit_decimal(v: Decimal, t: pa.Decimal128Type) -> Decimal:
    if v.as_tuple().exponent < -t.scale and v != v.quantize(Decimal(1).scaleb(-t.scale)):
        raise BadValue("n_scale", f"{v} has more than {t.scale} decimal places")
    if v.adjusted() >= t.precision - t.scale:
        raise BadValue("n_overflow", f"{v} does not fit decimal({t.precision},{t.scale})")
    return v.quantize(Decimal(1).scaleb(-t.scale))


def _timestamp(text: str) -> datetime:
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise BadValue("timestamp_invalid", f"{text[:40]!r} is not ISO-8601") from None
    if ts.tzinfo is None:
        raise BadValue("timestamp_invalid", f"{text[:40]!r} has no time zone")
    return ts.astimezone(UTC)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadValue("date_invalid", f"{text[:20]!r} is not YYYY-MM-DD") from None


def _shaped(v, t: pa.DataType, path: str = ""):
    """A decoded M / L checked against its declared Arrow shape (no field may be dropped)."""
    at = f" at {path}" if path else ""
    if v is None:
        return None
    if pa.types.is_struct(t):
        if not isinstance(v, dict):
            raise BadValue("shape_mismatch", f"expected a map{at}")
        unknown = set(v) - {f.name for f in t}
        if unknown:
            raise BadValue("shape_mismatch", f"undeclared field {sorted(unknown)[0]!r}{at}")
        return {f.name: _shaped(v.get(f.name), f.type, f"{path}.{f.name}") for f in t}
    if pa.types.is_list(t):
        if not isinstance(v, list):
            raise BadValue("shape_mismatch", f"expected a list{at}")
        return [_shaped(x, t.value_type, f"{path}[]") for x in v]
    if pa.types.is_decimal(t):
        if not isinstance(v, Decimal):
            raise BadValue("shape_mismatch", f"expected a number{at}")
        return _fit_decimal(v, t)
    if not isinstance(v, str):
        raise BadValue("shape_mismatch", f"expected a string{at}")
    return v


def integer(v: Decimal) -> int:
    if v != v.to_integral_value() or not -(2**63) <= v < 2**63:
        raise BadValue("n_not_integer", f"{v} is not a 64-bit integer")
    return int(v)


def convert(kind: str, t: pa.DataType, av: dict):
    """One contract attribute's typed value as its column value."""
    v = value(av)
    if v is None:
        return None
    if kind in SHAPES:
        return _shaped(v, t)
    if kind == "json":
        return dumps(v)
    key = next(iter(av))
    if key != TYPE_KEY[kind]:
        raise BadValue("type_mismatch", f"expected {TYPE_KEY[kind]}, got {key}")
    if kind in ("string", "bool", "string_set"):
        return v
    if kind in ("money", "rate"):
        return _fit_decimal(v, t)
    if kind == "int":
        return integer(v)
    if kind == "epoch_ms":
        return datetime.fromtimestamp(integer(v) / 1000, UTC)
    if kind == "timestamp":
        return _timestamp(v)
    if kind == "date":
        return _date(v)
    raise AssertionError(kind)


def image_row(entity: Entity | None, image: dict | None, keys: dict | None, tenant_id: str) -> dict:
    """An item image (typed attributes) as a lake row's body; BadValue says why it cannot be."""
    if image is not None and not isinstance(image, dict):
        raise BadValue("not_an_item", "an item image must be a JSON object")
    for field in TENANT_FIELDS:
        if image and field in image:
            own = value(image[field])
            if own != tenant_id:
                raise BadValue("tenant_mismatch", f"the item says {field}={str(own)[:40]!r}, "
                                                  f"but it was exported from tenant {tenant_id!r}")
    if entity is None:
        return {"_keys": dumps(value({"M": keys})) if keys else None,
                "_item": dumps(value({"M": image})) if image is not None else None}
    row: dict = {}
    extra = {}
    contract = entity.by_name
    for name, av in (image or {}).items():
        attr = contract.get(name)
        try:
            if attr is None:
                extra[name] = value(av)
            else:
                row[attr.column] = convert(attr.kind, attr.arrow_type, av)
        except BadValue as e:
            raise BadValue(e.code, f"attribute {name!r}: {e.detail}") from None
    if image is None or "id" not in image:
        if keys and "id" in keys:
            row["id"] = convert("string", pa.string(), keys["id"])
    if row.get("id") is None:
        raise BadValue("missing_key", "the item has no id")
    if image is not None:
        missing = [a.name for a in entity.attributes if not a.nullable and row.get(a.column) is None]
        if missing:
            raise BadValue("missing_required", f"required attribute {missing[0]!r} is missing or NULL")
    row["_extra"] = dumps(extra) if extra else None
    return row
