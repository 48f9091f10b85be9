"""The same key twice in one export: which copies to set aside, and why.

A full or incremental export holds each key once (an incremental window holds a key in its final
state), so a second copy is a defect of the export, not a change to apply. Stream files are not
for this module: they legitimately hold several changes of a key, ordered by their sequence.

The rule: per key, keep the newest copy, by event time (`_event_ts`, when the caller passes it:
an incremental line's write time; a full export's rows all share one), then `_lastChangedAt`, then
`_version`; a missing value is older than any value. Every other copy is set aside with reason
`duplicate_key` and a detail that says which line it lost to and why:
  "identical copy of line 7 of data/a.json.gz"            same content (`_digest`) as the kept copy
  "superseded by line 7 of data/a.json.gz (newer _version)"
  "unordered: ties with line 7 of data/a.json.gz on event time, _lastChangedAt, _version; the
   last copy in the export is kept"
Disagreeing copies that tie cannot be ordered; the last one in the caller's order is kept (the
order the export lists its files, then line), so a rerun keeps the same copy.

Usage (ingest, across every part of one export, before the audit):
    keys = <id, last_changed_at, ddb_version, _line, _event_ts, _source_file, part, row of each row>
    mask = duplicated(keys)                      # cheap: usually all false
    if mask.any(): keys = keys.filter(mask) + a `_digest` column from row_digests(those rows)
    aside = resolve_duplicates(keys)             # the caller's locators + _reason + _detail
"""

from __future__ import annotations

import hashlib

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

REQUIRED = ("id", "last_changed_at", "ddb_version", "_line")
# Where a row came from, not what it says: left out of its content fingerprint.
LOCATION = ("_line", "_source_file", "_export_id", "_sequence")


def duplicated(keys: pa.Table) -> np.ndarray:
    """Per row, whether its id occurs more than once (a null id never counts)."""
    ids = keys["id"].combine_chunks() if isinstance(keys["id"], pa.ChunkedArray) else keys["id"]
    codes = pc.dictionary_encode(ids)
    idx = pc.fill_null(codes.indices, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    valid = pc.is_valid(ids).to_numpy(zero_copy_only=False)
    counts = np.bincount(idx, weights=valid, minlength=len(codes.dictionary))
    return valid & (counts[idx] > 1)


def row_digests(rows: pa.Table, ignore: tuple[str, ...] = LOCATION) -> pa.Array:
    """A fingerprint of each row's content (every column but where it came from): equal
    fingerprints mean identical copies. Meant for the few rows `duplicated` finds."""
    names = [c for c in rows.column_names if c not in ignore]
    return pa.array([hashlib.blake2b(orjson.dumps(r, default=str, option=orjson.OPT_SORT_KEYS),
                                     digest_size=16).digest() for r in rows.select(names).to_pylist()],
                    pa.binary(16))


def _order(value) -> tuple:
    return (0,) if value is None else (1, value)


def resolve_duplicates(keys: pa.Table) -> pa.Table:
    """The rows to set aside among `keys` (one export's rows, in the export's order): every input
    column of those rows, plus `_reason` (duplicate_key) and `_detail`. See the module docstring."""
    missing = [c for c in REQUIRED if c not in keys.column_names]
    if missing:
        raise ValueError(f"resolve_duplicates needs columns {', '.join(REQUIRED)}; missing {', '.join(missing)}")
    mask = duplicated(keys) if keys.num_rows else np.zeros(0, dtype=bool)
    out_schema = pa.schema(list(keys.schema) + [pa.field("_reason", pa.string()), pa.field("_detail", pa.string())])
    if not mask.any():
        return out_schema.empty_table()
    positions = np.flatnonzero(mask)
    rows = keys.take(pa.array(positions)).to_pylist()
    clock = [c for c in ("_event_ts", "last_changed_at", "ddb_version") if c in keys.column_names]
    names = {"_event_ts": "event time", "last_changed_at": "_lastChangedAt", "ddb_version": "_version"}
    groups: dict[str, list[tuple[int, dict]]] = {}
    for pos, row in zip(positions.tolist(), rows, strict=True):
        groups.setdefault(row["id"], []).append((pos, row))
    aside: list[tuple[int, dict, str]] = []
    for copies in groups.values():
        ranked = sorted(copies, key=lambda c: (*(_order(c[1][k]) for k in clock), c[0]))
        _, kept = ranked[-1]
        where = f"line {kept['_line']}" + (f" of {kept['_source_file']}" if kept.get("_source_file") else "")
        for pos, row in ranked[:-1]:
            newer = next((k for k in clock if _order(row[k]) != _order(kept[k])), None)
            if "_digest" in row and row["_digest"] is not None and row["_digest"] == kept["_digest"]:
                detail = f"identical copy of {where}"
            elif newer is not None:
                detail = f"superseded by {where} (newer {names[newer]})"
            else:
                on = ", ".join(names[k] for k in clock)
                detail = f"unordered: ties with {where} on {on}; the last copy in the export is kept"
            aside.append((pos, row, detail))
    aside.sort(key=lambda a: a[0])
    table = keys.take(pa.array([a[0] for a in aside], pa.int64()))
    return table.append_column(pa.field("_reason", pa.string()), pa.array(["duplicate_key"] * len(aside))) \
                .append_column(pa.field("_detail", pa.string()), pa.array([a[2] for a in aside], pa.string()))
