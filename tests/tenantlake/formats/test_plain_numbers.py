"""The bulk path's check for number text it may write as is: DynamoDB's plain form (no exponent,
at most 38 characters), the same answer as Python's regex engine on the pattern, for any text."""

from __future__ import annotations

import re

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from tenantlake.formats.columnar import (
    ARROW_ONLY_BYTES,
    MINUS,
    NEEDS_ESCAPE_BYTES,
    NOT_IN_PLAIN_NUMBERS,
    _any_byte,
    _plain_number,
)

PLAIN = re.compile(r"-?(?:\d+\.?\d*|\.\d+)", re.ASCII)  # DynamoDB's digits


def oracle(text: str | None) -> bool | None:
    return None if text is None else PLAIN.fullmatch(text) is not None and len(text) <= 38


number_like = st.text(alphabet="0123456789.-", max_size=8) | st.text(alphabet="0123456789", min_size=36, max_size=40)
# with the bytes either side of the plain-number range ('/' is inside it, ',' and ':' border it)
anything = st.text(alphabet="0123456789.-+eEx \u0661/,:", max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.none() | number_like, max_size=40), st.lists(st.none() | anything, max_size=3))
def test_plain_numbers_are_told_as_the_regex_tells_them(digits_only, other):
    for values in (digits_only, digits_only + other):  # the fast check, and the regex where other bytes are
        assert _plain_number(pa.array(values, pa.string())).to_pylist() == [oracle(v) for v in values]


# The byte sets, as the regex byte classes they stand for (an independent reading of each).
BYTE_CLASSES = [(NEEDS_ESCAPE_BYTES, rb'["\\\x00-\x1f]'), (ARROW_ONLY_BYTES, rb"[+xX]"),
                (NOT_IN_PLAIN_NUMBERS, rb"[^0-9.\-]"), (MINUS, rb"-")]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.none() | st.binary(max_size=6) | st.sampled_from([b"-1.5", b"0x1F", b"+2", b"/", b",", b":"]),
                max_size=12),
       st.integers(0, 12), st.integers(0, 12))
def test_a_byte_set_is_found_where_its_regex_class_finds_a_byte(values, a, b):
    """Over any bytes, and on a slice (whose buffer holds the values sliced away: those may count)."""
    array = pa.array(values, pa.binary())
    for byte_set, byte_class in BYTE_CLASSES:
        pattern = re.compile(byte_class)
        assert _any_byte(array, byte_set) == any(pattern.search(v) for v in values if v is not None)
        piece = array.slice(min(a, b), abs(a - b))
        found = _any_byte(piece, byte_set)
        assert found >= any(pattern.search(v) for v in piece.to_pylist() if v is not None)
        assert found <= any(pattern.search(v) for v in values if v is not None)
