"""The catalogue is read from sql/ itself; every statement is one sqlglot understands; policies,
grants and comments are generated from it, so a new tenant-scoped table cannot miss its policy."""

import shutil
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from tenantlake.contracts import ENTITIES
from tenantlake.warehouse import render, security
from tenantlake.warehouse.catalogue import SQL_ROOT, CatalogueError, load_catalogue
from tenantlake.warehouse.engine import SqlWarehouse
from tenantlake.warehouse.redshift import RedshiftWarehouse

SQL_FILES = sorted(p for p in SQL_ROOT.rglob("*.sql") if ".duckdb." not in p.name)


def redshift(root=SQL_ROOT):
    return RedshiftWarehouse(lambda: None, "s3://central-lake/tenantlake", "arn:aws:iam::200000000000:role/copy",
                             catalogue=load_catalogue(root))


# ---- strict parsing ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", SQL_FILES, ids=[str(p.relative_to(SQL_ROOT)) for p in SQL_FILES])
def test_every_sql_file_is_sql_sqlglot_understands(path: Path):
    statements = render.parse(path.read_text(), str(path))  # raises on an opaque command
    assert statements and not any(s.find(exp.Command) for s in statements)


def test_the_parser_refuses_what_it_cannot_read_as_sql():
    """The guard the parse tests rely on: an opaque statement fails, it does not pass unchecked."""
    for text in ("ATTACH RLS POLICY p ON mart.x TO ROLE r", "CREATE ROLE r", "GRANT IGNORE RLS TO ROLE r",
                 "ALTER TABLE mart.x ROW LEVEL SECURITY ON"):
        with pytest.raises(render.SqlError):
            render.parse(text)


def test_every_query_and_check_of_the_catalogue_parses():
    cat = load_catalogue()
    for t in cat:
        for q in filter(None, [t.refresh.affected, *(x for r in t.reconcile for x in (r.this, r.core))]):
            render.parse_one(q, str(t.metadata))


def test_the_redshift_setup_script_has_no_opaque_statement():
    """Every statement is a parsed sqlglot tree (not a Command) that survives a round trip, or one
    of the typed Redshift statements sqlglot has no grammar for, whose names are checked here."""
    wh = redshift()
    cat = wh.catalogue
    script = wh.setup_script("tenantlake", "arn:aws:iam::200000000000:role/spectrum")
    kinds = set()
    for s in script:
        if isinstance(s, exp.Expression):
            assert not isinstance(s, exp.Command) and not s.find(exp.Command), s.sql("redshift")[:80]
            again = sqlglot.parse_one(s.sql("redshift"), read="redshift")
            assert type(again) is type(s) and not isinstance(again, exp.Command), s.sql("redshift")[:80]
        else:
            assert isinstance(s, security.TYPED), s
            kinds.add(type(s).__name__)
            if isinstance(s, security.AttachRlsPolicy):
                assert all(cat[t].rls for t in s.tables) and s.role == cat.security.policy.role
            if isinstance(s, security.RowLevelSecurity):
                assert cat[s.table].rls
            if isinstance(s, security.CreateRlsPolicy):
                assert not s.predicate.find(exp.Command) and s.column == "tenant_id"
    assert kinds == {t.__name__ for t in security.TYPED} - {"GrantSystem"} | {"GrantSystem"}


def test_typed_statements_refuse_names_that_could_break_out():
    with pytest.raises(ValueError, match="may be written into SQL"):
        security.AttachRlsPolicy("tenant_isolation", ("mart.x; DROP TABLE y",), "agency_analyst")
    with pytest.raises(ValueError, match="may be written into SQL"):
        security.CreateExternalSchema("lake", "tenantlake_raw", "arn:aws:iam::1:role/x' OR '1")


# ---- generated security ------------------------------------------------------------------------

def attached(script) -> set[str]:
    return {t for s in script if isinstance(s, security.AttachRlsPolicy) for t in s.tables}


def test_every_tenant_scoped_relation_gets_the_policy_and_is_turned_on():
    cat = load_catalogue()
    script = redshift().setup_script("tenantlake", "arn:aws:iam::200000000000:role/spectrum")
    on = {s.table for s in script if isinstance(s, security.RowLevelSecurity)}
    scoped = {t.qualified for t in cat if t.tenant_scoped}
    exempt = {t.qualified: t.rls_exempt for t in cat if t.tenant_scoped and t.rls_exempt}
    assert attached(script) == on == scoped - set(exempt)
    # the marts and the protected views analysts read are among them, and every exemption says why
    assert {"mart.agency_snapshot", "mart.enrolment_funnel", "lake_protected.consumer", "core.dim_consumer"} <= on
    assert set(exempt) == {"ops.analyst_tenant"} | {f"{s}.{e.lower()}" for e in ENTITIES
                                                     for s in ("lake", "lake_protected_ext")}
    assert all(len(why) > 20 for why in exempt.values())


def test_a_new_tenant_scoped_table_in_sql_gets_its_policy(tmp_path):
    """Add a mart to a copy of sql/: its metadata alone attaches the policy, grants its readers and
    comments its columns. Dropping its tenant_scoped flag is refused (it has tenant_id)."""
    root = tmp_path / "sql"
    shutil.copytree(SQL_ROOT, root)
    (root / "mart/payments_by_status.sql").write_text(
        "SELECT tenant_id, status, COUNT(*) AS payments FROM core.fact_payment GROUP BY tenant_id, status\n")
    (root / "mart/payments_by_status.yml").write_text(
        "description: Payments per agency and status.\ngrain: [tenant_id, status]\ntenant_scoped: true\n"
        "readers: [agency_analyst]\nrefresh: {scope: full}\ncolumns:\n"
        "  - {name: tenant_id, type: VARCHAR(64), doc: The agency.}\n"
        "  - {name: status, type: VARCHAR(4096), doc: The status.}\n"
        "  - {name: payments, type: BIGINT, doc: How many.}\n")
    script = redshift(root).setup_script("tenantlake", "arn:aws:iam::200000000000:role/spectrum")
    assert "mart.payments_by_status" in attached(script)
    texts = [security.text(s) for s in script]
    assert "ALTER TABLE mart.payments_by_status ROW LEVEL SECURITY ON" in texts
    assert "GRANT SELECT ON mart.payments_by_status TO ROLE agency_analyst" in texts
    assert "COMMENT ON COLUMN mart.payments_by_status.payments IS 'How many.'" in texts


def test_a_table_with_a_tenant_column_cannot_forget_it_is_tenant_scoped(tmp_path):
    root = tmp_path / "sql"
    shutil.copytree(SQL_ROOT, root)
    path = root / "mart/enrolment_funnel.yml"
    path.write_text(path.read_text().replace("tenant_scoped: true\n", ""))
    with pytest.raises(CatalogueError, match="mart.enrolment_funnel has a tenant_id column: declare it tenant_scoped"):
        load_catalogue(root)


def test_a_table_without_metadata_is_refused(tmp_path):
    root = tmp_path / "sql"
    shutil.copytree(SQL_ROOT, root)
    (root / "mart/forgotten.sql").write_text("SELECT tenant_id FROM core.dim_agency\n")
    with pytest.raises(CatalogueError, match="forgotten.sql: no metadata beside it"):
        load_catalogue(root)


def test_a_column_without_a_doc_is_refused(tmp_path):
    root = tmp_path / "sql"
    shutil.copytree(SQL_ROOT, root)
    path = root / "mart/agency_snapshot.yml"
    path.write_text(path.read_text().replace("doc: Plans now ACTIVE.", "doc: ''"))
    with pytest.raises(CatalogueError, match="missing `doc`"):
        load_catalogue(root)


def test_grants_follow_the_readers_and_the_cross_agency_mart_stays_cross_agency():
    texts = {security.text(s) for s in security.grants(load_catalogue())}
    assert "GRANT SELECT ON mart.creditor_exposure TO ROLE cross_agency_analyst" in texts
    assert not any("mart.creditor_exposure TO ROLE agency_analyst" in t for t in texts)
    assert "GRANT SELECT ON mart.agency_snapshot TO ROLE agency_analyst, ROLE cross_agency_analyst" in texts
    assert {"REVOKE USAGE ON SCHEMA lake FROM PUBLIC", "GRANT IGNORE RLS TO ROLE tenantlake_loader",
            "GRANT IGNORE RLS TO ROLE cross_agency_analyst"} <= texts
    assert not any(t.startswith("GRANT") and "lake." in t and "agency_analyst" in t for t in texts)


def test_no_pseudonym_is_computed_in_the_warehouse():
    """Consumer keys arrive made (tenantlake.privacy, at publish): no f_pseudonym anywhere."""
    script = redshift().setup_statements("tenantlake", "arn:aws:iam::200000000000:role/spectrum")
    assert not any("f_pseudonym" in s.lower() for s in script)
    assert not any("f_pseudonym" in p.read_text().lower() for p in SQL_ROOT.rglob("*.sql"))


# ---- the catalogue against the queries ---------------------------------------------------------

def test_every_derived_table_declares_exactly_the_columns_its_query_gives(fresh):
    """Run on the embedded default: each query's output names, in order, are the metadata's."""
    w = fresh()
    for t in w.derived:
        query, _ = render.query_of(t.source, "duckdb")
        names = [r[0] for r in w._fetch(f"DESCRIBE {render.sql(query, 'duckdb')}")]
        assert names == t.column_names, t.qualified


def test_refresh_runs_in_dependency_order():
    order = [t.qualified for t in SqlWarehouse(load_catalogue()).derived]
    for before, after in [("core.bridge_plan_debt", "core.fact_plan"), ("core.fact_plan", "mart.agency_snapshot"),
                          ("core.dim_creditor", "core.fact_debt_snapshot"), ("core.dim_date", "core.fact_debt_snapshot"),
                          ("mart.creditor_exposure_by_agency", "mart.creditor_exposure"),
                          ("core.dim_creditor", "ops.unmatched_creditors")]:
        assert order.index(before) < order.index(after), (before, after)


# ---- comments and the guide --------------------------------------------------------------------

def test_every_warehouse_column_has_a_comment(fresh):
    w = fresh()
    rows = w.query("SELECT schema_name, table_name, column_name, comment FROM duckdb_columns() "
                   "WHERE schema_name IN ('core', 'mart', 'ops', 'stage', 'lake_protected')")
    catalogued = {t.qualified for t in load_catalogue()}
    mine = [r for r in rows if f"{r['schema_name']}.{r['table_name']}" in catalogued]
    assert len(mine) > 500
    assert [r for r in mine if not r["comment"]] == []
    tables = w.query("SELECT schema_name || '.' || table_name AS t, comment FROM duckdb_tables() "
                     "WHERE schema_name IN ('core', 'mart')")
    assert tables and all(r["comment"] for r in tables if r["t"] in catalogued)


def test_redshift_comments_every_core_and_mart_table_and_column():
    cat = load_catalogue()
    texts = {security.text(s) for s in security.comments(cat)}
    for t in cat:
        if t.schema in ("core", "mart"):
            assert any(x.startswith(f"COMMENT ON TABLE {t.qualified} IS '") for x in texts), t.qualified
            for c in t.columns:
                assert any(x.startswith(f"COMMENT ON COLUMN {t.qualified}.{c.name} IS '") for x in texts), c.name
    # contract docs reach the entity tables; quotes are escaped by the generator (as Redshift reads
    # them back: the same text), not by hand
    assert "COMMENT ON COLUMN core.current_debt.apr IS 'Annual percentage rate (percent).'" in texts
    quoted = next(x for x in texts if x.startswith("COMMENT ON COLUMN core.dim_consumer.consumer_key"))
    assert sqlglot.parse_one(quoted, read="redshift").expression.name == load_catalogue()[
        "core.dim_consumer"].column("consumer_key").doc


def test_the_analyst_guide_is_up_to_date():
    from tenantlake.warehouse import docs

    assert docs.GUIDE.read_text() == docs.guide(), "run: python -m tenantlake.warehouse.docs"
    for t in load_catalogue().of(schema="mart"):
        assert f"### `{t.qualified}`" in docs.GUIDE.read_text()


def test_ops_tables_handed_in_are_refilled_whole_and_only_ops_ones(fresh, registry):
    from datetime import UTC, date, datetime

    w = fresh()
    columns = ("tenant_id", "month", "batches", "total_usd", "computed_at")
    at = datetime(2026, 11, 30, tzinfo=UTC)
    w.refresh(registry, reference={"ops.tenant_cost_monthly": (columns, [("agency-001", date(2026, 11, 1), 3, 1.5, at)])})
    w.refresh(registry, reference={"ops.tenant_cost_monthly": (columns, [("agency-002", date(2026, 11, 1), 1, 0.25, at)])})
    assert w.query("SELECT tenant_id, total_usd FROM ops.tenant_cost_monthly") == [
        {"tenant_id": "agency-002", "total_usd": 0.25}]
    with pytest.raises(ValueError, match="only ops tables"):
        w.refresh(registry, reference={"mart.agency_snapshot": (("tenant_id",), [("agency-001",)])})


def test_an_agency_whose_entry_breaks_keeps_its_row_in_dim_agency(fresh, registry):
    """A typo in agency-002's entry fails its own tasks; its data is still in the warehouse, so its
    agency must not drop out of dim_agency and every mart on the next refresh (independent probe:
    warehouse_load succeeded and two agencies were gone from the BI marts)."""
    import yaml

    from tenantlake.registry import DEFAULT_PATH, parse_registry

    w = fresh()
    w.refresh(registry)
    before = w.query("SELECT * FROM ops.agency_registry ORDER BY tenant_id")
    doc = yaml.safe_load(DEFAULT_PATH.read_text())
    broken = next(t for t in doc["tenants"] if t["tenant_id"] == "agency-002")
    broken["role_arn"] = "arn:aws:iam::299999999999:role/x"  # another account: the entry is invalid
    typo = parse_registry(yaml.safe_dump(doc))
    assert "agency-002" in typo.invalid_by_id and "agency-002" not in typo.by_id
    w.refresh(typo)
    assert w.query("SELECT * FROM ops.agency_registry ORDER BY tenant_id") == before
    assert "agency-002" in {r["tenant_id"] for r in w.query("SELECT tenant_id FROM core.dim_agency")}
