"""DynamoDB attribute values to Python values, one value at a time, with a reason for every refusal.

This is the precise path: the vectorised decoder uses it for the rows it cannot take in bulk, and
streams and ION go through it. It accepts what boto3's TypeDeserializer accepts, with DynamoDB's
own stricter limits (no NaN or Infinity, magnitude 1E-130 .. 9.99..E+125, non-empty sets without
duplicates, at most 32 levels of nesting).
"""

from __future__ import annotations

import base64
import binascii
import re
from decimal import Decimal

NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)  # Decimal also reads "١٩"
MAX_DEPTH = 32


class BadValue(ValueError):
    """A value DynamoDB would not hold; `code` is the quarantine reason code."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def number(text) -> Decimal:
    if not isinstance(text, str):
        raise BadValue("n_not_string", f"N must be a string, got JSON {type(text).__name__} {text!r}")
    if not NUMBER.fullmatch(text):
        raise BadValue("n_invalid", f"{text[:60]!r} is not a number")
    value = Decimal(text)  # exact: the constructor never rounds
    if len(value.as_tuple().digits) > 38:
        raise BadValue("n_precision", f"{text[:60]} has more than 38 significant digits")
    if value and not -130 <= value.adjusted() <= 125:
        raise BadValue("n_range", f"{text[:60]} is outside DynamoDB's range 1E-130 .. 9.99E+125")
    return value


def binary(text) -> bytes:
    if not isinstance(text, str):
        raise BadValue("b_invalid", f"B must be base64 text, got {type(text).__name__}")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadValue("b_invalid", f"{text[:40]!r} is not valid base64") from None


def _set(values, convert, name: str) -> list:
    if not isinstance(values, list):
        raise BadValue("not_a_set", f"{name} must be a JSON array")
    if not values:
        raise BadValue("empty_set", f"{name} is empty; DynamoDB sets hold at least one element")
    out = [convert(v) for v in values]
    if len(set(out)) != len(out):
        raise BadValue("duplicate_in_set", f"{name} holds a duplicate element")
    return out


def _string(v) -> str:
    if not isinstance(v, str):
        raise BadValue("type_mismatch", f"S must be a string, got {type(v).__name__}")
    return v


def _bool(v) -> bool:
    if not isinstance(v, bool):
        raise BadValue("type_mismatch", f"BOOL must be true or false, got {v!r}")
    return v


def _null(v) -> None:
    if v is not True:
        raise BadValue("type_mismatch", f"NULL must be true, got {v!r}")


def _map(v, depth: int) -> dict:
    if not isinstance(v, dict):
        raise BadValue("type_mismatch", "M must be a JSON object")
    return {k: value(x, depth + 1) for k, x in v.items()}


def _list(v, depth: int) -> list:
    if not isinstance(v, list):
        raise BadValue("type_mismatch", "L must be a JSON array")
    return [value(x, depth + 1) for x in v]


# type key -> decoder of its JSON value (the second argument is the nesting depth)
DECODERS = {
    "S": lambda v, d: _string(v),
    "N": lambda v, d: number(v),
    "BOOL": lambda v, d: _bool(v),
    "NULL": lambda v, d: _null(v),
    "B": lambda v, d: binary(v),
    "SS": lambda v, d: _set(v, _string, "SS"),
    "NS": lambda v, d: _set(v, number, "NS"),
    "BS": lambda v, d: _set(v, binary, "BS"),
    "M": _map,
    "L": _list,
}


def envelope(av, depth: int = 1) -> tuple[str, object]:
    """An attribute value's one type key and its JSON value, checked: {"S": "x"} -> ("S", "x")."""
    if depth > MAX_DEPTH:
        raise BadValue("nesting_too_deep", f"more than {MAX_DEPTH} levels of nesting")
    if not isinstance(av, dict) or not av:
        raise BadValue("not_an_attribute_value", f"expected {{type: value}}, got {str(av)[:60]}")
    if len(av) != 1:
        raise BadValue("two_type_keys", f"one type key expected, got {', '.join(sorted(av))}")
    (kind, v), = av.items()
    if kind not in DECODERS:
        hint = f" (type keys are upper case: {kind.upper()})" if kind.upper() in DECODERS else ""
        raise BadValue("unknown_type", f"unknown type key {kind[:20]!r}{hint}")
    return kind, v


def value(av, depth: int = 1):
    """One attribute value ({"S": "x"}) as Python: str, Decimal, bytes, bool, None, list, dict.
    Sets come back as lists in the order given (order is not meaningful in DynamoDB)."""
    kind, v = envelope(av, depth)
    return DECODERS[kind](v, depth)


def item(attrs) -> dict:
    """A whole item ({"id": {"S": ...}, ...}) as a dict of Python values."""
    if not isinstance(attrs, dict):
        raise BadValue("not_an_item", f"an item must be a JSON object, got {type(attrs).__name__}")
    out = {}
    for name, av in attrs.items():
        try:
            out[name] = value(av)
        except BadValue as e:
            raise BadValue(e.code, f"attribute {name!r}: {e.detail}") from None
    return out


def plain_json(v):
    """A decoded value as JSON-ready data: Decimals keep their exact text, bytes become base64."""
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, bytes | bytearray):
        return base64.b64encode(v).decode()
    if isinstance(v, dict):
        return {k: plain_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain_json(x) for x in v]
    return v
