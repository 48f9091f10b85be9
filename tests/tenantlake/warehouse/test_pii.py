"""No clear personal data past raw: the values of every table and view of the embedded default are
scanned for every identifying value the simulator put in (from its own truth files, not from our
tables); Redshift's is asserted from the DDL the catalogue generates.

The `lake` schema is the raw zone itself (lake.<entity> reads the raw tables' files, as
Redshift's external schema over the raw Glue database does): it holds clear values by design,
is reachable by the loader only on Redshift, and erasure and offboarding reach it in the lake.
It is scanned too, to show the scan finds what is there."""

import gzip
import json
import re
from datetime import date

import pytest

from tenantlake.contracts import ENTITIES, Pii
from tenantlake.formats.rows import lake_schema
from tenantlake.warehouse import render
from tenantlake.warehouse.catalogue import load_catalogue
from tests.tenantlake.warehouse.conftest import TENANTS

pytestmark = pytest.mark.slow
PII_ATTRIBUTES = [a.name for a in ENTITIES["Consumer"].attributes if a.pii is not Pii.NONE]  # id included
# Looked for inside longer values too (JSON, concatenations): values no other text contains by
# chance. A bare first or last name is looked for as a whole value: counselors (agency staff, not
# personal data) are named from the same lists, "Sam Kowalski" beside a consumer "Kowalski".
INSIDE = ("email", "phone", "id", "dateOfBirth")


def planted(home) -> tuple[set[str], set[date]]:
    """Every consumer's identifying values, from the simulator's truth."""
    texts, dates = set(), set()
    for tid in TENANTS:
        for line in gzip.decompress((home / f"truth/{tid}/Consumer.jsonl.gz").read_bytes()).splitlines():
            item = json.loads(line)
            for a in PII_ATTRIBUTES:
                if a in item:
                    texts.add((a, item[a]["S"]))
            if "dateOfBirth" in item:
                dates.add(date.fromisoformat(item["dateOfBirth"]["S"]))
    return texts, dates


TOKEN = re.compile(r"[A-Za-z0-9@.+_-]+")  # an email, a phone, an id or a date is one token of a longer text


def hits(w, relation: str, planted_texts: set[tuple[str, str]], dates: set[date]) -> list:
    """Values of the relation equal to a planted value, or holding a distinctive one as a token
    (inside JSON, a concatenation); every column, nested ones as their text."""
    texts = {t for _, t in planted_texts}
    inside = {t for a, t in planted_texts if a in INSIDE}
    # text, dates, and nested values as their text; a number cannot hold a name (and "2030" is
    # both a year and somebody's ssnLast4)
    columns = [c for c in w.query(f"DESCRIBE SELECT * FROM {relation}")
               if c["column_type"] in ("DATE", "VARCHAR", "JSON") or c["column_type"].startswith(("STRUCT", "MAP"))
               or c["column_type"].endswith("]")]
    if not columns:
        return []
    select = ", ".join(f'"{c["column_name"]}"' if c["column_type"] in ("DATE", "VARCHAR") else
                       f'CAST("{c["column_name"]}" AS VARCHAR)' for c in columns)
    found = []
    for row in w._fetch(f"SELECT {select} FROM {relation}"):
        for v in row:
            if v is None:
                continue
            if isinstance(v, date):
                if v in dates:
                    found.append(v)
            elif v in texts or (len(v) > 7 and not inside.isdisjoint(TOKEN.findall(v))):
                found.append(v)
    return found


def relations(w) -> list[str]:
    return [f"{r['s']}.{r['t']}" for r in w.query(
        "SELECT table_schema AS s, table_name AS t FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema NOT IN ('information_schema', 'pg_catalog')")]


def test_the_planted_values_are_there_to_find(world):
    texts, dates = planted(world[0])
    assert len(texts) > 1000 and len(dates) > 500
    assert {a for a, _ in texts} >= {"firstName", "lastName", "email", "phone", "ssnLast4", "dateOfBirth",
                                            "postalCode", "id"}


def test_no_table_or_view_of_the_warehouse_holds_a_planted_value(world, wh):
    texts, dates = planted(world[0])
    scanned = relations(wh)
    schemas = {r.split(".")[0] for r in scanned}
    assert {"stage", "core", "mart", "ops", "lake_protected", "lake_protected_ext", "mart_agency"} <= schemas
    assert len(scanned) > 100
    for relation in scanned:
        if relation.startswith("lake."):
            continue  # the raw zone: see the module docstring, and the test below
        assert hits(wh, relation, texts, dates) == [], relation


def test_the_scan_finds_the_raw_zones_values(world, wh):
    """The same scan over lake.consumer (the raw zone) finds them: the scan can fail."""
    texts, dates = planted(world[0])
    found = hits(wh, "lake.consumer", texts, dates)
    assert len(found) > 1000


def test_stage_holds_no_planted_value_while_a_load_runs(world, golden_lake, fresh, monkeypatch):
    """Stage is empty between loads: scan it (and the MERGE's winners) inside the load's
    transaction, after the batches were staged and applied."""
    texts, dates = planted(world[0])
    w = fresh()
    seen = {}
    real = w._apply

    def apply_then_scan(entity, batches):
        real(entity, batches)
        for table in (f"stage.{entity.lower()}", f"stage.{entity.lower()}_merge"):
            seen[table] = (w.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"], hits(w, table, texts, dates))
    monkeypatch.setattr(w, "_apply", apply_then_scan)
    report = w.load(golden_lake.of(entity="Consumer") + golden_lake.of(entity="Debt"))
    assert report.failed == [] and report.loaded > 0
    assert seen["stage.consumer"][0] > 500 and seen["stage.debt_merge"][0] > 500
    assert {t: found for t, (_, found) in seen.items() if found} == {}


def test_no_redshift_stage_core_or_mart_column_can_hold_clear_personal_data():
    """From the catalogue Redshift's DDL is generated from: an entity's tables have its protected
    columns only (no direct identifier, quasi identifiers coarsened, no consumer id), and every
    derived table reads warehouse tables only, never the raw zone."""
    cat = load_catalogue()
    for name, e in ENTITIES.items():
        raw = {f.name for f in lake_schema(e)}
        clear = {a.column for a in e.attributes if a.pii is not Pii.NONE}
        for t in cat.of(entity=name):
            if t.schema == "lake":
                assert t.pii == "clear" and clear <= set(t.column_names) and not t.readers
                continue
            ddl = render.sql(render.create_table(t, "redshift"), "redshift")
            assert not clear & set(t.column_names), (t.qualified, clear & set(t.column_names))
            for column in clear:
                assert f" {column} " not in ddl and f"({column} " not in ddl, (t.qualified, column)
            assert set(t.column_names) - {"_op_rank", "_removed"} <= (raw - clear) | {
                "consumer_key", "age_band", "postal_prefix"}, t.qualified
    for t in cat:
        if t.kind == "derived":
            query, _ = render.query_of(t.source, "redshift")
            assert not {r for r in render.references(query) if r.startswith("lake.")}, t.qualified
            assert t.pii in ("none", "pseudonymous"), t.qualified


def test_an_undeclared_attribute_never_reaches_the_warehouse(fresh, lake, registry):
    """An agency's newer app adds a free-text note to Debt: unclassified, it stays in raw's `_extra`
    (the lake view of raw shows it, so the scan can find it), and no other relation holds it."""
    note = "Called Jane Plantedname at 555-0142"
    lake.publish("agency-001", "Debt", "e1", [{"id": "d1", "consumer_id": "c1", "balance": 10,
                                               "_extra": json.dumps({"counselorNote": {"S": note}})}])
    w = fresh()
    w.register_lake(lake.raw, lake.protected)
    assert w.load(lake.batches).loaded == 1
    w.refresh(registry)
    found = {r: n for r in relations(w)
             if (n := w._fetch(f"SELECT COUNT(*) FROM {r} AS t WHERE CAST(t AS VARCHAR) LIKE '%Plantedname%'")[0][0])}
    assert found == {"lake.debt": 1}
