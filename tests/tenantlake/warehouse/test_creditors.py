"""core.dim_creditor and ops.unmatched_creditors on DuckDB, over debts written for these tests.

The tables the SQL reads are made here, in the shape the warehouse gives them, so the test does
not depend on the warehouse code; the SQL is the DuckDB rendering the warehouse runs
(dim_creditor.duckdb.sql) and the Redshift file is held to it. Expected creditors are written by
hand; tenantlake.creditors (the Python statement of the rule) is checked against the SQL.
"""

from __future__ import annotations

import csv
import re
from decimal import Decimal

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from tenantlake.creditors import SEED, conform, load_aliases, words
from tenantlake.settings import REPO

SQL = REPO / "sql"


def _statement(path) -> str:
    """The file's one statement, comment lines dropped (as the warehouse reads sql/ files)."""
    code = "\n".join(line for line in path.read_text().splitlines() if not line.strip().startswith("--"))
    [statement] = [s.strip() for s in code.split(";") if s.strip()]
    return statement


def faithful_duckdb(redshift: str) -> str:
    """sqlglot's DuckDB rendering with Redshift's REGEXP_REPLACE semantics (every match)."""
    tree = sqlglot.parse_one(redshift, read="redshift")
    for node in tree.find_all(exp.RegexpReplace):
        node.set("single_replace", None)
    return tree.sql("duckdb", pretty=True)


def dim_creditor_duckdb() -> str:
    return _statement(SQL / "core/dim_creditor.duckdb.sql")


def unmatched_duckdb() -> str:
    return sqlglot.transpile(_statement(SQL / "ops/unmatched_creditors.sql"), read="redshift", write="duckdb")[0]


def seed_rows() -> list[tuple[str, str]]:
    with open(SEED, newline="") as f:
        return [(r["alias"], r["creditor"]) for r in csv.DictReader(f)]


class Warehouse:
    """The few tables dim_creditor and unmatched_creditors read, in the warehouse's shape."""

    def __init__(self):
        self.con = duckdb.connect()
        for schema in ("core", "ops"):
            self.con.execute(f"CREATE SCHEMA {schema}")
        self.con.execute(sqlglot.transpile(_statement(SQL / "ops/creditor_aliases.sql"), read="redshift",
                                           write="duckdb")[0])
        self.con.executemany("INSERT INTO ops.creditor_aliases VALUES (?, ?)", seed_rows())
        self.con.execute("CREATE TABLE core.current_debt (tenant_id VARCHAR, id VARCHAR, creditor_name VARCHAR, "
                         "balance DECIMAL(18, 2), is_deleted BOOLEAN, _event_ts TIMESTAMPTZ, _removed BOOLEAN)")
        self.con.execute("CREATE TABLE core.history_debt (tenant_id VARCHAR, id VARCHAR, creditor_name VARCHAR, "
                         "balance DECIMAL(18, 2), is_deleted BOOLEAN, _event_ts TIMESTAMPTZ)")

    def debt(self, tenant, debt_id, spelling, balance="100.00", day=1, removed=False, deleted=False, history=()):
        """A debt as it is now, and the spellings its earlier versions carried."""
        ts = f"2026-03-{day:02d} 12:00:00+00"
        self.con.execute("INSERT INTO core.current_debt VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [tenant, debt_id, spelling, Decimal(balance), deleted, ts, removed])
        for i, old in enumerate(history):
            self.con.execute("INSERT INTO core.history_debt VALUES (?, ?, ?, ?, FALSE, ?)",
                             [tenant, debt_id, old, Decimal(balance), f"2026-02-{i + 1:02d} 12:00:00+00"])
        self.con.execute("INSERT INTO core.history_debt VALUES (?, ?, ?, ?, ?, ?)",
                         [tenant, debt_id, spelling, Decimal(balance), deleted, ts])

    def refresh(self):
        for table, sql in (("core.dim_creditor", dim_creditor_duckdb()), ("ops.unmatched_creditors", unmatched_duckdb())):
            self.con.execute(f"DROP TABLE IF EXISTS {table}")
            self.con.execute(sql)

    def dim(self) -> dict[str, str]:
        return dict(self.con.execute("SELECT spelling, creditor_name FROM core.dim_creditor").fetchall())

    def rows(self, sql: str) -> list[dict]:
        cur = self.con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


# Spellings as bureaus and counselors write them, with the creditor a person would say they are.
EXPECTED = {
    # the examples
    "JPMCB CARD SERVICES": "CHASE",
    "Chase Bank USA, N.A.": "CHASE",
    "CAPITAL ONE BANK (USA) N.A. XXXX4821": "CAPITAL ONE",
    "SYNCB/AMAZON": "SYNCHRONY",
    "DISCOVER FIN SVCS LLC": "DISCOVER",
    "AMEX": "AMERICAN EXPRESS",
    # spellings of known creditors that appear nowhere in the seed or the simulator
    "citicards c.b.n.a.": "CITIBANK",
    "Capital One, N.A. acct# 5678": "CAPITAL ONE",
    "AMZN/SYNCB": "SYNCHRONY",  # store first, issuer after the slash
    "THD/CBNA": "CITIBANK",  # Home Depot's card, issued by Citibank
    "SHELL/CBNA": "CITIBANK",
    "Kohl's": "CAPITAL ONE",
    "KOHLS/CHASE": "CHASE",  # Kohl's cards before 2011: the longer alias wins
    "U.S. Bank N.A.": "US BANK",
    "Wells Fargo Card Svcs #0099": "WELLS FARGO",
    "Bank of America, N.A. ACCT 5678": "BANK OF AMERICA",
    "TD BANK USA/TARGETCRED": "TD BANK",
    "DEPT OF EDUCATION/NELN": "US DEPT OF EDUCATION",
    "MIDLAND CRED": "MIDLAND CREDIT",  # TransUnion's fixed-width truncation
    "BB&T": "TRUIST",
    "Merrick Bk": "MERRICK BANK",
    "Comenity Bank/Ulta": "BREAD FINANCIAL",
    "CB/VICSCRT": "BREAD FINANCIAL",
    "ONE MAIN FINANCIAL": "ONEMAIN",
    "LendingClub Corp": "LENDINGCLUB",
    "CRB/UPSTART": "UPSTART",
    "GREENSKY/HOME DEPOT": "GREENSKY",  # the leading words win over what follows the slash
    # nobody's alias: each stands as its own creditor, under its normalised name
    "Zephyr Lending, L.L.C. #1234": "ZEPHYR LENDING",
    "ZEPHYR LENDING LLC XXXX-9876": "ZEPHYR LENDING",
    "CITIZENS BANK": "CITIZENS",  # CITI is an alias, but only as a whole word
    "CHASEWOOD APARTMENTS": "CHASEWOOD APARTMENTS",
    "Acme Card Services, Inc.": "ACME",
    "***": "UNKNOWN",
    # accents fold to their plain letter, so the two spellings are one creditor
    "Crédit Mutuel": "CREDIT MUTUEL",
    "CREDIT MUTUEL": "CREDIT MUTUEL",
    "Société Générale, N.A.": "SOCIETE GENERALE",
    # another script leaves no words: each stands as sent, never one UNKNOWN for all of them
    "みずほ銀行": "みずほ銀行",
    "中国银行": "中国银行",
}
UNMATCHED = {"Zephyr Lending, L.L.C. #1234", "ZEPHYR LENDING LLC XXXX-9876", "CITIZENS BANK",
             "CHASEWOOD APARTMENTS", "Acme Card Services, Inc.", "***"}


@pytest.fixture
def wh():
    w = Warehouse()
    for i, spelling in enumerate(EXPECTED):
        w.debt("agency-001", f"d{i}", spelling)
    w.refresh()
    yield w
    w.con.close()


def test_bureau_spellings_conform_to_the_creditor_a_person_would_name(wh):
    dim = wh.dim()
    assert {s: dim[s] for s in EXPECTED} == EXPECTED


def test_one_row_per_spelling_and_one_key_per_creditor(wh):
    rows = wh.rows("SELECT * FROM core.dim_creditor")
    assert sorted(r["spelling"] for r in rows) == sorted(EXPECTED)
    keys = {}
    for r in rows:
        assert keys.setdefault(r["creditor_name"], r["creditor_key"]) == r["creditor_key"]
    assert len(set(keys.values())) == len(keys)


def test_how_each_spelling_matched_is_recorded(wh):
    got = {r["spelling"]: (r["alias"], r["matched_by"], r["normalised_name"])
           for r in wh.rows("SELECT spelling, alias, matched_by, normalised_name FROM core.dim_creditor")}
    assert got["CAPITAL ONE BANK (USA) N.A. XXXX4821"] == ("CAPITAL ONE", "leading words", "CAPITAL ONE")
    assert got["AMZN/SYNCB"] == ("SYNCB", "after slash", "AMZN SYNCB")
    assert got["KOHLS/CHASE"] == ("KOHLS CHASE", "leading words", "KOHLS CHASE")
    assert got["Zephyr Lending, L.L.C. #1234"] == (None, None, "ZEPHYR LENDING")
    assert got["***"] == (None, None, "")


def test_the_simulators_spellings_keep_their_creditors():
    """The golden tests compare creditor exposure by the simulator's creditor names, upper-cased."""
    from tenantlake_dev.simulate.history import SPELLING_TO_CREDITOR

    w = Warehouse()
    for i, spelling in enumerate(SPELLING_TO_CREDITOR):
        w.debt("agency-002", f"s{i}", spelling)
    w.refresh()
    assert w.dim() == {s: c.upper() for s, c in SPELLING_TO_CREDITOR.items()}
    assert w.rows("SELECT * FROM ops.unmatched_creditors") == []


def test_unmatched_names_are_listed_per_agency_with_counts():
    w = Warehouse()
    w.debt("agency-001", "a1", "Zephyr Lending, L.L.C. #1234", "250.00", day=3)
    w.debt("agency-001", "a2", "Zephyr Lending, L.L.C. #1234", "50.00", day=4, removed=True)  # gone: not live
    w.debt("agency-002", "b1", "ZEPHYR LENDING LLC XXXX-9876", "75.50", day=5)
    w.debt("agency-002", "b2", "ZEPHYR LENDING LLC XXXX-9876", "20.00", day=6, deleted=True)
    w.debt("agency-002", "b3", "CHASE BANK USA NA", "999.00")
    w.refresh()
    rows = w.rows("SELECT creditor_name, spelling, tenant_id, debts, live_debts, live_balance, "
                  "CAST(first_seen AS DATE) AS first_seen, CAST(last_seen AS DATE) AS last_seen "
                  "FROM ops.unmatched_creditors ORDER BY tenant_id")
    from datetime import date
    assert rows == [
        {"creditor_name": "ZEPHYR LENDING", "spelling": "Zephyr Lending, L.L.C. #1234", "tenant_id": "agency-001",
         "debts": 2, "live_debts": 1, "live_balance": Decimal("250.00"),
         "first_seen": date(2026, 3, 3), "last_seen": date(2026, 3, 4)},
        {"creditor_name": "ZEPHYR LENDING", "spelling": "ZEPHYR LENDING LLC XXXX-9876", "tenant_id": "agency-002",
         "debts": 2, "live_debts": 1, "live_balance": Decimal("75.50"),
         "first_seen": date(2026, 3, 5), "last_seen": date(2026, 3, 6)},
    ]


def test_an_alias_added_later_conforms_history_too():
    """A steward maps ZEPHYR LENDING; the next rebuild conforms every spelling of it, including
    one only an earlier version of a debt carried, and it leaves the unmatched list."""
    w = Warehouse()
    w.debt("agency-001", "a1", "Zephyr Lending, L.L.C. #1234", history=["Zephyr Lending Co ACCT 0042"])
    w.debt("agency-002", "b1", "ZEPHYR LENDING LLC XXXX-9876")
    w.refresh()
    assert w.dim() == {"Zephyr Lending, L.L.C. #1234": "ZEPHYR LENDING", "Zephyr Lending Co ACCT 0042": "ZEPHYR LENDING",
                       "ZEPHYR LENDING LLC XXXX-9876": "ZEPHYR LENDING"}
    assert len(w.rows("SELECT * FROM ops.unmatched_creditors")) == 3  # agency-001 has two spellings

    w.con.execute("INSERT INTO ops.creditor_aliases VALUES ('ZEPHYR LENDING', 'ZEPHYR FINANCIAL')")
    w.refresh()
    assert set(w.dim().values()) == {"ZEPHYR FINANCIAL"}
    # every version ever loaded, as fact_debt_snapshot joins it: the old spelling too
    history = w.rows("SELECT h.tenant_id, h.creditor_name AS spelling, c.creditor_name FROM core.history_debt AS h "
                     "LEFT JOIN core.dim_creditor AS c ON c.spelling = h.creditor_name ORDER BY h._event_ts")
    assert [r["creditor_name"] for r in history] == ["ZEPHYR FINANCIAL"] * 3
    assert history[0]["spelling"] == "Zephyr Lending Co ACCT 0042"  # only in history
    assert w.rows("SELECT * FROM ops.unmatched_creditors") == []


def _variants(alias: str) -> list[str]:
    """How bureaus and counselors vary a name: case, punctuation, suffixes, account fragments."""
    lower = alias.lower()
    return [alias, lower.title(), f"{alias} BANK N.A.", f"{alias}, NA XXXX1234", f"{lower} card svcs #4821",
            f"{alias} (USA) ACCT NO 5678", f"{alias}/SOME STORE", f"SOME STORE/{alias}", f"{alias}X"]


def test_the_python_statement_of_the_rule_gives_the_sqls_answers():
    """tenantlake.creditors and the SQL agree on every spelling here: the hand-written ones, the
    simulator's, and variants of every alias (their answers are not written out: this checks the
    two statements of the rule against each other; the tests above check the rule)."""
    from tenantlake_dev.simulate.history import SPELLING_TO_CREDITOR

    spellings = set(EXPECTED) | set(SPELLING_TO_CREDITOR) | {v for a, _ in seed_rows() for v in _variants(a)}
    spellings |= {"", " ", "1234", "ACCT 5678", "N/A", "U. S. A. Funding", "Kohl’s", "AT&T Mobility", "A//B",
                  "Café Crédit", "ACME CO CO", "XXXX", "ACME 12", "ACME X12", "ACME LAST 4 1234"}
    w = Warehouse()
    for i, s in enumerate(sorted(spellings)):
        w.debt("agency-001", f"v{i}", s)
    w.refresh()
    aliases = load_aliases()
    sql = {r["spelling"]: (r["creditor_name"], r["normalised_name"], r["alias"], r["matched_by"])
           for r in w.rows("SELECT * FROM core.dim_creditor")}
    python = {s: (c.creditor, c.normalised, c.alias, c.matched_by) for s in spellings for c in [conform(s, aliases)]}
    assert sql == python


# ---- the seed ----------------------------------------------------------------------------------

def test_seed_aliases_and_creditors_are_in_the_form_spellings_are_matched_in():
    rows = seed_rows()
    aliases = [a for a, _ in rows]
    assert len(aliases) == len(set(aliases)), "an alias maps to one creditor"
    for alias, creditor in rows:
        assert words(alias) == alias, f"{alias!r} would never match: write it as {words(alias)!r}"
        assert re.fullmatch(r"[A-Z0-9]+( [A-Z0-9]+)*", creditor), creditor
    # the refresh splits each seed line on commas: no quoting, exactly two fields
    lines = SEED.read_text().splitlines()
    assert all(line.count(",") == 1 for line in lines)


def test_every_creditor_conforms_to_itself():
    aliases = load_aliases()
    for creditor in set(aliases.values()):
        assert conform(creditor, aliases).creditor == creditor, creditor


# An alias that begins with another alias overrides it: only where that is meant.
INTENDED_OVERRIDES = {("KOHLS", "KOHLS CHASE"), ("CHASE", "CHASE RECEIVABLES")}


def test_no_alias_silently_overrides_a_shorter_one():
    aliases = load_aliases()
    overrides = {(a, b) for a in aliases for b in aliases
                 if b.startswith(a + " ") and aliases[a] != aliases[b]}
    assert overrides == INTENDED_OVERRIDES


def test_the_largest_issuers_and_lenders_are_in_the_seed():
    creditors = set(load_aliases().values())
    assert {"CHASE", "CAPITAL ONE", "CITIBANK", "BANK OF AMERICA", "WELLS FARGO", "DISCOVER", "AMERICAN EXPRESS",
            "SYNCHRONY", "BARCLAYS", "US BANK", "PNC", "TD BANK", "NAVIENT", "NELNET", "SALLIE MAE", "ALLY",
            "SANTANDER", "CREDIT ONE", "MERRICK BANK", "ONEMAIN", "LENDINGCLUB", "UPSTART", "AFFIRM", "BEST EGG",
            "BREAD FINANCIAL"} <= creditors


# ---- both dialects -----------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["core/dim_creditor.sql", "ops/unmatched_creditors.sql"])
def test_the_redshift_sql_parses_as_redshift_without_opaque_commands(path):
    tree = sqlglot.parse_one(_statement(SQL / path), read="redshift")
    assert isinstance(tree, exp.Create) and tree.args["kind"] == "TABLE"
    assert not list(tree.find_all(exp.Command)) and not list(tree.find_all(exp.Anonymous))
    # the layout survives a round trip through Redshift (DuckDB drops it, Redshift must not)
    assert "DISTSTYLE ALL" in tree.sql("redshift")


def test_the_duckdb_override_is_the_redshift_file_rendered_faithfully():
    expected = faithful_duckdb(_statement(SQL / "core/dim_creditor.sql"))
    assert dim_creditor_duckdb() == expected, (
        "sql/core/dim_creditor.duckdb.sql is out of date; its statement should be:\n" + expected)


def test_sqlglots_plain_rendering_would_not_be_faithful():
    """Why the override exists: if sqlglot renders Redshift's REGEXP_REPLACE as replacing every
    match one day, this fails and the override can go (the warehouse then transpiles the file)."""
    plain = sqlglot.transpile(_statement(SQL / "core/dim_creditor.sql"), read="redshift", write="duckdb")[0]
    con = duckdb.connect()
    assert con.execute("SELECT REGEXP_REPLACE('A, B. C', '[^A-Z0-9]+', ' ')").fetchone()[0] == "A B. C"
    assert "'g'" not in plain


def test_the_warehouse_renders_dim_creditor_for_duckdb_from_the_override():
    from tenantlake.warehouse import sql_text

    assert faithful_duckdb(_statement(SQL / "core/dim_creditor.sql")) in sql_text("core", "dim_creditor", "duckdb")


def test_a_debt_without_a_creditor_name_counts_under_unknown_so_the_exposure_mart_ties_out():
    """An inner join on the spelling dropped it (probe: 3.03 of an agency's balance missing)."""
    w = Warehouse()
    w.debt("agency-001", "d-1", "CHASE BANK USA, N.A.", "100.00")
    w.debt("agency-001", "d-2", None, "250.00")
    w.refresh()
    mart = sqlglot.transpile(_statement(SQL / "mart/creditor_exposure_by_agency.sql"), read="redshift",
                             write="duckdb")[0]
    rows = {(r["creditor_name"], r["debts"], r["total_balance"]) for r in w.rows(mart)}
    assert rows == {("CHASE", 1, Decimal("100.00")), ("UNKNOWN", 1, Decimal("250.00"))}


def test_the_sql_folds_and_drops_the_same_characters_as_the_python():
    """The accent table and the no-name punctuation live twice, in Python and in the SQL's TRANSLATE:
    every one of the 174 letters, not only those the spellings above happen to use, must agree."""
    from tenantlake.creditors import FOLD_FROM, FOLD_TO, NO_NAME

    for path in ("core/dim_creditor.sql", "core/dim_creditor.duckdb.sql"):
        text = (SQL / path).read_text()
        assert f"'{FOLD_FROM}'" in text and f"'{FOLD_TO}'" in text, path
        assert f"""'{NO_NAME.replace("'", "''")}', ''""" in text, path
