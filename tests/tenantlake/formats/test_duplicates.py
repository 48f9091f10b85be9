"""One key twice in an export: the newest copy stays, every other is set aside with a reason."""

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from tenantlake.formats.duplicates import duplicated, resolve_duplicates, row_digests


def ms(n: int) -> datetime:
    return datetime.fromtimestamp(n / 1000, UTC)


def keys(rows: list[tuple], digest: bool = True) -> pa.Table:
    """(id, last_changed_at ms or None, version or None, line, file, part, content) per row."""
    table = pa.table({
        "id": [r[0] for r in rows],
        "last_changed_at": pa.array([None if r[1] is None else ms(r[1]) for r in rows], pa.timestamp("ms", "UTC")),
        "ddb_version": pa.array([r[2] for r in rows], pa.int64()),
        "_line": pa.array([r[3] for r in rows], pa.int32()),
        "_source_file": [r[4] for r in rows],
        "part": [r[5] for r in rows],
    })
    if digest:
        table = table.append_column("_digest", pa.array([r[6].encode() for r in rows], pa.binary()))
    return table


def aside(table: pa.Table) -> list[tuple]:
    out = resolve_duplicates(table)
    return [(r["id"], r["_line"], r["part"], r["_reason"], r["_detail"]) for r in out.to_pylist()]


def test_no_duplicates_sets_nothing_aside():
    t = keys([("a", 1, 1, 1, "f0", 0, "x"), ("b", 1, 1, 2, "f0", 0, "y")])
    assert not duplicated(t).any()
    assert resolve_duplicates(t).num_rows == 0


def test_the_newest_by_last_changed_at_then_version_is_kept_across_files():
    t = keys([
        ("a", 100, 5, 1, "f0", 0, "old"),   # older _lastChangedAt, though a higher version
        ("b", 100, 1, 2, "f0", 0, "b1"),
        ("a", 200, 2, 7, "f1", 1, "new"),
        ("b", 100, 2, 3, "f1", 1, "b2"),   # same _lastChangedAt, newer _version
        ("c", 1, 1, 9, "f1", 1, "c"),
    ])
    assert list(duplicated(t)) == [True, True, True, True, False]
    assert aside(t) == [
        ("a", 1, 0, "duplicate_key", "superseded by line 7 of f1 (newer _lastChangedAt)"),
        ("b", 2, 0, "duplicate_key", "superseded by line 3 of f1 (newer _version)"),
    ]


def test_an_identical_copy_says_so_whatever_its_position():
    t = keys([("a", 100, 2, 4, "f0", 0, "same"), ("a", 100, 2, 9, "f0", 0, "same"), ("a", 100, 2, 2, "f1", 1, "same")])
    assert aside(t) == [("a", 4, 0, "duplicate_key", "identical copy of line 2 of f1"),
                        ("a", 9, 0, "duplicate_key", "identical copy of line 2 of f1")]


def test_disagreeing_copies_that_tie_keep_the_last_and_say_they_are_unordered():
    t = keys([("a", 100, 2, 4, "f0", 0, "x"), ("a", 100, 2, 1, "f1", 1, "y")])
    assert aside(t) == [("a", 4, 0, "duplicate_key", "unordered: ties with line 1 of f1 on _lastChangedAt, "
                                                     "_version; the last copy in the export is kept")]
    # the same input in the same order keeps the same copy: a rerun publishes the same rows
    assert aside(t) == aside(keys([("a", 100, 2, 4, "f0", 0, "x"), ("a", 100, 2, 1, "f1", 1, "y")]))


def test_a_missing_clock_is_older_than_any_value():
    t = keys([("a", None, None, 1, "f0", 0, "x"), ("a", 5, None, 2, "f0", 0, "y"), ("a", 5, 1, 3, "f0", 0, "z")])
    assert [r[4] for r in aside(t)] == ["superseded by line 3 of f0 (newer _lastChangedAt)",
                                        "superseded by line 3 of f0 (newer _version)"]


def test_event_time_orders_first_when_given():
    """An incremental line written later is the key's final state, even with an older clock."""
    t = keys([("a", 200, 3, 1, "f0", 0, "modify"), ("a", None, None, 2, "f0", 0, "remove")])
    t = t.append_column("_event_ts", pa.array([ms(1000), ms(2000)], pa.timestamp("ms", "UTC")))
    assert aside(t) == [("a", 1, 0, "duplicate_key", "superseded by line 2 of f0 (newer event time)")]


def test_without_digests_ties_are_unordered_and_nulls_never_match():
    t = keys([("a", 1, 1, 1, "f0", 0, ""), ("a", 1, 1, 2, "f0", 0, "")], digest=False)
    assert [r[4][:9] for r in aside(t)] == ["unordered"]
    t = keys([(None, 1, 1, 1, "f0", 0, ""), (None, 1, 1, 2, "f0", 0, "")])
    assert not duplicated(t).any() and resolve_duplicates(t).num_rows == 0


def test_required_columns_are_named():
    with pytest.raises(ValueError, match="missing ddb_version, _line"):
        resolve_duplicates(pa.table({"id": ["a"], "last_changed_at": [1]}))


def test_row_digests_ignore_where_a_row_came_from_and_see_what_it_says():
    rows = pa.table({"id": ["a", "a", "a"], "balance": ["1.00", "1.00", "2.00"], "_line": [1, 5, 6],
                     "_source_file": ["f0", "f1", "f1"]})
    d = row_digests(rows).to_pylist()
    assert d[0] == d[1] != d[2]


def test_many_rows_are_resolved_in_bulk():
    n = 200_000
    ids = np.arange(n).astype(str).astype(object)
    ids[-1] = ids[0]  # one duplicate among many
    t = pa.table({"id": pa.array(ids, pa.string()), "last_changed_at": pa.array(np.arange(n), pa.int64()),
                  "ddb_version": pa.array(np.ones(n, dtype=np.int64)), "_line": pa.array(np.arange(n), pa.int32())})
    assert aside_ids(t) == [("0", 0)]


def aside_ids(t: pa.Table) -> list[tuple]:
    return [(r["id"], r["_line"]) for r in resolve_duplicates(t).to_pylist()]
