"""Drift seen while decoding: which undeclared or coerced parts arrived, how often, and when.

An observation is keyed by (path, type, what):
  path  the attribute path: "riskScore", "bureau.history"; a list's elements are "[]", so a new
        field in any element of `concessions` is "concessions[].waived"; a name that is not a plain
        identifier is quoted: bureau."tradeline.history" (see `step`)
  type  the DynamoDB type sent ("N", "L", "M" ...); for a coercion, "sent->declared" ("S->N")
  what  new_attribute (top level) | new_field (inside a declared map or list element) | new_shape (a
        list element of another shape than declared: an S among maps) | coerced | truncated (a
        timestamp sent finer than the microseconds the lake and Redshift hold: "S")

Only the root of an undeclared part is an observation (a new map's own fields are not). A row
counts once per key however many list elements carry it. Rows the decoder quarantines are not
counted: drift describes what was published.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

NEW_ATTRIBUTE, NEW_FIELD, NEW_SHAPE = "new_attribute", "new_field", "new_shape"
_PLAIN = re.compile(r"[A-Za-z0-9_$-]+")


def step(prefix: str, name: str) -> str:
    """The path of attribute `name` inside `prefix` ("" at the item's top). A name that is not a
    plain identifier is written as a JSON string: a field named "tradeline.history" is
    bureau."tradeline.history", never the same path as bureau.tradeline.history."""
    name = name if _PLAIN.fullmatch(name) else json.dumps(name, ensure_ascii=False)
    return f"{prefix}.{name}" if prefix else name
COERCED, TRUNCATED = "coerced", "truncated"


@dataclass(frozen=True)
class Drift:
    path: str
    type: str
    what: str
    rows: int
    first_us: int  # min _event_ts (epoch microseconds) of the rows that carried it
    last_us: int  # max _event_ts


class DriftTally:
    """Accumulates observations; `result()` gives them sorted by (path, type, what)."""

    def __init__(self):
        self._seen: dict[tuple[str, str, str], list[int]] = {}

    def add(self, key: tuple[str, str, str], event_us: int, rows: int = 1, last_us: int | None = None) -> None:
        last_us = event_us if last_us is None else last_us
        cur = self._seen.get(key)
        if cur is None:
            self._seen[key] = [rows, event_us, last_us]
        else:
            cur[0] += rows
            cur[1] = min(cur[1], event_us)
            cur[2] = max(cur[2], last_us)

    def add_row(self, keys: Iterable[tuple[str, str, str]], event_us: int) -> None:
        for key in set(keys):  # once per row
            self.add(key, event_us)

    def extend(self, drift: Iterable[Drift]) -> None:
        for d in drift:
            self.add((d.path, d.type, d.what), d.first_us, d.rows, d.last_us)

    def result(self) -> list[Drift]:
        return [Drift(*key, *v) for key, v in sorted(self._seen.items())]


def merge_drift(*groups: Iterable[Drift]) -> list[Drift]:
    """One list per (path, type, what) from many slices or files: counts add, times widen."""
    tally = DriftTally()
    for group in groups:
        tally.extend(group)
    return tally.result()
