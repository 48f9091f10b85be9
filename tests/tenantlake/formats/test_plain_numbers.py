"""The bulk path's check for number text it may write as is: DynamoDB's plain form (no exponent,
at most 38 characters), the same answer as Python's regex engine on the pattern, for any text."""

from __future__ import annotations

import re

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from tenantlake.formats.columnar import _plain_number

PLAIN = re.compile(r"-?(?:\d+\.?\d*|\.\d+)", re.ASCII)  # DynamoDB's digits


def oracle(text: str | None) -> bool | None:
    return None if text is None else PLAIN.fullmatch(text) is not None and len(text) <= 38


number_like = st.text(alphabet="0123456789.-", max_size=8) | st.text(alphabet="0123456789", min_size=36, max_size=40)
anything = st.text(alphabet="0123456789.-+eEx \u0661", max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.none() | number_like, max_size=40), st.lists(st.none() | anything, max_size=3))
def test_plain_numbers_are_told_as_the_regex_tells_them(digits_only, other):
    for values in (digits_only, digits_only + other):  # the fast check, and the regex where other bytes are
        assert _plain_number(pa.array(values, pa.string())).to_pylist() == [oracle(v) for v in values]
