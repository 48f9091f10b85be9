"""Rendered SQL kept between processes: a second warehouse runs the first one's text without
rendering, and anything the text depends on changing means rendering again."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from tenantlake.warehouse import render
from tenantlake.warehouse.catalogue import SQL_ROOT, load_catalogue
from tenantlake.warehouse.duckdb import DuckDBWarehouse
from tenantlake.warehouse.rendered import fingerprint


def _statements(w: DuckDBWarehouse) -> list[list[str]]:
    t = w.catalogue["core.dim_consumer"]
    return [w._template("merge", "Debt"), w._template("history", "Payment"), w._statements(t, "keys"),
            w._statements(t, "full")]


def _no_rendering(monkeypatch):
    def refuse(*_):
        raise AssertionError("rendered again")
    monkeypatch.setattr(render, "file_statements", refuse)
    monkeypatch.setattr(render, "query_of", refuse)


def test_a_second_warehouse_reads_what_the_first_rendered(tmp_path, monkeypatch):
    first = DuckDBWarehouse(str(tmp_path / "a.duckdb"), sql_cache=str(tmp_path / "cache"))
    rendered = _statements(first)
    first.close()
    uncached = DuckDBWarehouse(str(tmp_path / "b.duckdb"))
    assert _statements(uncached) == rendered  # the cache holds exactly what rendering gives
    uncached.close()
    second = DuckDBWarehouse(str(tmp_path / "a.duckdb"), sql_cache=str(tmp_path / "cache"))
    _no_rendering(monkeypatch)  # opening a warehouse reads queries; running the load's must not
    assert _statements(second) == rendered
    second.close()


def test_a_changed_sql_folder_is_rendered_again(tmp_path):
    root = tmp_path / "sql"
    shutil.copytree(SQL_ROOT, root)
    cache = str(tmp_path / "cache")
    DuckDBWarehouse(str(tmp_path / "a.duckdb"), load_catalogue(root), sql_cache=cache)._template("merge", "Debt")
    merge = root / "load" / "merge.sql"
    merge.write_text(merge.read_text().replace("WHEN NOT MATCHED", "WHEN NOT MATCHED /* changed */", 1))
    w = DuckDBWarehouse(str(tmp_path / "b.duckdb"), load_catalogue(root), sql_cache=cache)
    assert w._rendered.get(("load", "merge", "Debt")) is None  # another fingerprint: nothing stale read
    w._template("merge", "Debt")
    assert len(list((tmp_path / "cache").glob("*.json"))) == 2


def test_an_unreadable_or_unwritable_cache_only_costs_rendering(tmp_path, caplog):
    cache = tmp_path / "cache"
    w = DuckDBWarehouse(str(tmp_path / "a.duckdb"), sql_cache=str(cache))
    rendered = w._template("merge", "Debt")
    w.close()
    (only,) = cache.glob("*.json")
    only.write_text("{not json")
    with caplog.at_level(logging.WARNING):
        w = DuckDBWarehouse(str(tmp_path / "a.duckdb"), sql_cache=str(cache))
    assert "unreadable" in caplog.text
    assert w._template("merge", "Debt") == rendered
    w.close()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        w = DuckDBWarehouse(str(tmp_path / "b.duckdb"), sql_cache=str(blocked))
        assert w._template("merge", "Debt") == rendered
        w._template("history", "Debt")
    assert caplog.text.count("not written") == 1


def test_the_fingerprint_follows_dialect_and_code(tmp_path):
    catalogue = load_catalogue()
    code = tmp_path / "render.py"
    code.write_text(Path(render.__file__).read_text())
    same = fingerprint("duckdb", catalogue, [code])
    assert fingerprint("duckdb", load_catalogue(), [code]) == same
    assert fingerprint("redshift", catalogue, [code]) != same
    code.write_text(code.read_text() + "\n# a change to the renderer\n")
    assert fingerprint("duckdb", catalogue, [code]) != same
