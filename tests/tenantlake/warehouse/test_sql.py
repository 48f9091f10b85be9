"""sql/ is Redshift SQL: every file parses in sqlglot's Redshift dialect, and the statements the
Redshift backend sends for a known batch are exactly these (no Redshift here: asserted as text)."""

import json
import os
from pathlib import Path

import pytest
import sqlglot

from tenantlake.lake import Commit
from tenantlake.warehouse import SQL, RedshiftWarehouse, merge_context, render, statements

FILES = sorted(p for p in SQL.rglob("*.sql") if ".duckdb." not in p.name)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(SQL)) for p in FILES])
def test_every_sql_file_parses_as_redshift(path: Path):
    text = render(path.read_text(), **merge_context("Debt")) if path.name.startswith("_") else path.read_text()
    for statement in statements(text):
        if statement.startswith("ATTACH RLS POLICY"):
            continue  # beyond sqlglot's Redshift grammar; the RLS tests below check these as text
        sqlglot.parse_one(statement, read="redshift")


def test_the_tables_the_issue_names_exist_one_file_each():
    names = {f"{p.parent.name}.{p.stem}" for p in FILES}
    for table in ["core.dim_agency", "core.dim_date", "core.dim_consumer", "core.dim_counselor", "core.dim_creditor",
                  "core.fact_debt_snapshot", "core.fact_application", "core.fact_plan", "core.fact_payment",
                  "core.fact_budget", "mart.agency_kpis_monthly", "mart.creditor_exposure", "mart.enrolment_funnel",
                  "mart.plan_outcomes_by_cohort", "ops.load_audit"]:
        assert table in names, table


def test_every_core_and_mart_table_leads_its_sort_key_with_tenant_id():
    for p in FILES:
        if p.parent.name in ("core", "mart") and not p.name.startswith("_") and p.stem != "dim_date" \
                and p.stem not in ("creditor_exposure", "dim_creditor"):
            text = p.read_text()
            assert "SORTKEY (tenant_id" in text, p.name


def test_row_level_security_policy_is_attached_to_every_agency_mart():
    text = (SQL / "security/row_level_security.sql").read_text()
    assert "CREATE RLS POLICY tenant_isolation" in text
    for mart in ["agency_kpis_monthly", "agency_snapshot", "creditor_exposure_by_agency", "enrolment_funnel",
                 "plan_outcomes_by_cohort"]:
        assert f"ATTACH RLS POLICY tenant_isolation ON mart.{mart} TO ROLE agency_analyst" in text
        assert f"ALTER TABLE mart.{mart} ROW LEVEL SECURITY ON" in text
    assert "GRANT IGNORE RLS TO ROLE cross_agency_analyst" in text


def test_protected_views_are_the_analysts_only_way_into_the_lake():
    from tenantlake.contracts import ENTITIES

    text = " ".join((SQL / "security/lake_access.sql").read_text().split())
    assert "REVOKE USAGE ON SCHEMA lake FROM PUBLIC" in text
    assert "GRANT USAGE ON SCHEMA lake TO ROLE tenantlake_loader;" in text  # and to no one else
    assert text.count("ON SCHEMA lake ") == 2
    attached = text.split("ATTACH RLS POLICY tenant_isolation ON ")[1].split(" TO ROLE agency_analyst")[0]
    views = {f"lake_protected.{e.lower()}" for e in ENTITIES}
    assert set(attached.split(", ")) == views  # every entity's view, so a new entity cannot be missed
    for view in views:
        assert f"ALTER TABLE {view} ROW LEVEL SECURITY ON" in text
    udf = " ".join((SQL / "security/f_pseudonym.sql").read_text().split())
    assert "REVOKE EXECUTE ON FUNCTION f_pseudonym (VARCHAR, VARCHAR) FROM PUBLIC" in udf


def test_protected_view_ddl_is_late_binding_and_drops_direct_identifiers():
    from tenantlake.lake_access import protected_view

    ddl = protected_view("Consumer", "redshift")
    assert ddl.startswith("CREATE OR REPLACE VIEW lake_protected.consumer AS SELECT tenant_id, "
                          "f_pseudonym(tenant_id, id) AS consumer_key, ")
    assert ddl.endswith(" FROM lake.consumer WITH NO SCHEMA BINDING")
    assert "EXTRACT(YEAR FROM date_of_birth) AS date_of_birth_year" in ddl
    assert "LEFT(postal_code, 3) AS postal_code_prefix" in ddl
    for column in ("first_name", "last_name", "email", "phone", "ssn_last4", "_extra", " id,"):
        assert column not in ddl
    sqlglot.parse_one(ddl, read="redshift")


@pytest.fixture
def batch():
    return Commit("agency-001", "Debt", "01793491200000-8ad38d92", "2026-11-01", "FULL_EXPORT",
                  "tenant=agency-001/table=Debt/AWSDynamoDB/01793491200000-8ad38d92/manifest-summary.json", 1195, 0,
                  files=[{"key": "raw/Debt/tenant_id=agency-001/export_date=2026-11-01/01793491200000-8ad38d92-part-00000.parquet",
                          "rows": 1195, "bytes": 91234}])


@pytest.fixture
def redshift():
    return RedshiftWarehouse(lambda: None, "s3://central-lake/tenantlake", "arn:aws:iam::200000000000:role/redshift-copy")


def test_copy_and_merge_statements_for_a_known_batch(redshift, batch):
    sent = redshift.batch_statements(batch)
    assert sent[0] == ("DELETE FROM stage.debt", ())
    assert sent[1] == ("COPY stage.debt FROM 's3://central-lake/tenantlake/_manifests/Debt/tenant_id=agency-001/"
                       "01793491200000-8ad38d92.json' IAM_ROLE 'arn:aws:iam::200000000000:role/redshift-copy' "
                       "FORMAT AS PARQUET MANIFEST", ())
    assert sent[2] == ("SELECT pg_last_copy_count()", ())
    merge = next(s for s, _ in sent if s.startswith("MERGE INTO core.current_debt"))
    assert "USING stage.debt_merge AS b" in merge and "WHEN MATCHED THEN UPDATE SET" in merge
    assert " AND (" not in merge.split("WHEN MATCHED")[1]  # Redshift's MERGE takes no condition there
    assert sent[-1] == ("INSERT INTO ops.load_audit VALUES (%s, %s, %s, %s, %s, %s, %s, GETDATE())",
                        ("agency-001", "Debt", "01793491200000-8ad38d92", "FULL_EXPORT", 1195, 1195, 1))
    for statement, _ in sent:
        sqlglot.parse_one(statement.replace("%s", "NULL"), read="redshift")
    assert redshift.copy_manifest(batch) == {"entries": [{
        "url": "s3://central-lake/tenantlake/raw/Debt/tenant_id=agency-001/export_date=2026-11-01/"
               "01793491200000-8ad38d92-part-00000.parquet", "mandatory": True, "meta": {"content_length": 91234}}]}


def test_partitions_are_registered_idempotently_and_in_batches(redshift, batch):
    commits = [Commit("agency-001", "Debt", f"e{i}", f"2026-11-{1 + i % 3:02d}", "INCREMENTAL_EXPORT", "s", 1, 0)
               for i in range(6)] + [Commit("agency-002", "Debt", "x", "2026-11-01", "FULL_EXPORT", "s", 1, 0)]
    (sql,) = redshift.add_partitions("Debt", commits)
    assert sql.startswith("ALTER TABLE lake.debt ADD IF NOT EXISTS PARTITION (tenant_id = 'agency-001', "
                          "export_date = '2026-11-01') LOCATION 's3://central-lake/tenantlake/raw/Debt/"
                          "tenant_id=agency-001/export_date=2026-11-01/'")
    assert sql.count("PARTITION (") == 4  # three days of agency-001, one of agency-002, each once
    many = [Commit("agency-001", "Debt", f"e{i}", f"2026-{1 + i // 28:02d}-{1 + i % 28:02d}", "FULL_EXPORT", "s", 1, 0)
            for i in range(250)]
    assert [s.count("PARTITION (") for s in redshift.add_partitions("Debt", many)] == [100, 100, 50]


def test_ddl_rendered_from_the_contract(redshift):
    stage, history, current, merge = redshift.entity_ddl("Debt")
    assert "balance DECIMAL(18,2)" in stage and "bureau SUPER" in stage and "tenant_id VARCHAR(128) NOT NULL" in stage
    assert current.endswith("DISTKEY (id) COMPOUND SORTKEY (tenant_id, id, _event_ts)")
    assert "_removed BOOLEAN" in current and "_removed" not in history
    ext = redshift.external_table_ddl("Debt")
    assert "PARTITIONED BY (tenant_id VARCHAR(64), export_date VARCHAR(10))" in ext
    assert "bureau struct<name:varchar(4096),pulledAt:varchar(4096),tradeline:struct<" in ext
    assert " tenant_id " not in ext.split("PARTITIONED BY")[0]  # it comes from the partition path


def test_values_that_could_break_out_of_a_literal_are_refused():
    with pytest.raises(ValueError, match="may be written into SQL"):
        RedshiftWarehouse(lambda: None, "s3://lake/x' OR 1=1 --", "arn:aws:iam::200000000000:role/r")


@pytest.mark.skipif(not os.environ.get("REDSHIFT_HOST"), reason="live Redshift test: set REDSHIFT_HOST, "
                    "REDSHIFT_USER, REDSHIFT_PASSWORD, REDSHIFT_DATABASE to run it")
def test_live_redshift_accepts_the_ddl():  # pragma: no cover - needs a real cluster
    import redshift_connector

    conn = redshift_connector.connect(host=os.environ["REDSHIFT_HOST"], user=os.environ["REDSHIFT_USER"],
                                      password=os.environ["REDSHIFT_PASSWORD"], database=os.environ["REDSHIFT_DATABASE"])
    cur = conn.cursor()
    for schema in ("stage", "core", "mart", "ops"):
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    wh = RedshiftWarehouse(lambda: conn, "s3://placeholder/lake", "arn:aws:iam::200000000000:role/r")
    for ddl in wh.entity_ddl("Debt"):
        cur.execute(ddl)
    conn.rollback()
    json.dumps({})


class FakeConnection:
    """A DB-API connection that records what it was sent; COPY 'loads' `copied` rows."""

    def __init__(self, copied, already_loaded=0):
        self.sent, self.copied, self.already, self.done = [], copied, already_loaded, None

    def cursor(self):
        conn = self

        class Cursor:
            def execute(self, sql, params=None):
                conn.sent.append((sql, params))
                self.result = conn.already if "load_audit WHERE" in sql else conn.copied

            def fetchone(self):
                return (self.result,)
        return Cursor()

    def commit(self):
        self.done = "commit"

    def rollback(self):
        self.done = "rollback"

    def close(self):
        pass


def test_redshift_load_sends_the_batch_in_one_transaction(batch, tmp_path):
    from tenantlake.storage import LocalStore

    conn = FakeConnection(copied=1195)
    wh = RedshiftWarehouse(lambda: conn, "s3://central-lake/tenantlake", "arn:aws:iam::200000000000:role/redshift-copy",
                           LocalStore(tmp_path))
    result = wh.load_batch(batch, None)
    assert not result.skipped and conn.done == "commit"
    assert [s for s, _ in conn.sent[1:]] == [s for s, _ in wh.batch_statements(batch)]
    manifest = json.loads((tmp_path / wh.manifest_key(batch)).read_text())
    assert manifest == wh.copy_manifest(batch)


def test_redshift_load_rolls_back_when_copy_count_disagrees(batch, tmp_path):
    from tenantlake.storage import LocalStore
    from tenantlake.warehouse import LoadError

    conn = FakeConnection(copied=1194)
    wh = RedshiftWarehouse(lambda: conn, "s3://central-lake/tenantlake", "arn:aws:iam::200000000000:role/r",
                           LocalStore(tmp_path))
    with pytest.raises(LoadError, match="COPY loaded 1194 rows, the commit marker says 1195"):
        wh.load_batch(batch, None)
    assert conn.done == "rollback"
    assert not any(s.startswith("MERGE") for s, _ in conn.sent)  # stopped before touching core


def test_redshift_replayed_batch_is_skipped(batch, tmp_path):
    from tenantlake.storage import LocalStore

    conn = FakeConnection(copied=1195, already_loaded=1)
    wh = RedshiftWarehouse(lambda: conn, "s3://central-lake/tenantlake", "arn:aws:iam::200000000000:role/r",
                           LocalStore(tmp_path))
    assert wh.load_batch(batch, None).skipped and len(conn.sent) == 1


def test_a_quote_never_reaches_a_literal():
    from tenantlake.warehouse import S3_URL, literal

    with pytest.raises(ValueError):
        literal("s3://lake/raw/it's", S3_URL)


def test_partitions_are_registered_outside_a_transaction(batch, tmp_path):
    conn = FakeConnection(copied=0)
    conn.autocommit = False
    wh = RedshiftWarehouse(lambda: conn, "s3://central-lake/tenantlake", "arn:aws:iam::200000000000:role/r")
    wh.register_lake("Debt", [batch], None)
    assert conn.autocommit is True and conn.sent[0][0].startswith("ALTER TABLE lake.debt ADD IF NOT EXISTS PARTITION")


def test_marts_carry_comments_for_bi_tools():
    for p in (SQL / "mart").glob("*.sql"):
        assert f"COMMENT ON TABLE mart.{p.stem} IS '" in p.read_text(), p.name


def test_post_load_checks_run_on_redshift_with_its_placeholder():
    from tenantlake.loading import post_load_checks

    class Cursor:
        description = [("n",)]

        def __init__(self, sent):
            self.sent = sent

        def execute(self, sql, params=None):
            self.sent.append((sql, params))
            self.description = [("tenant_id",), ("n",)] if "GROUP BY" in sql else [("n",)]

        def fetchall(self):
            return [("agency-001", 5)] if "GROUP BY" in self.sent[-1][0] else [(0,)]

    class Conn(FakeConnection):
        def cursor(self):
            return Cursor(self.sent)

    conn = Conn(copied=0)
    wh = RedshiftWarehouse(lambda: conn, "s3://central-lake/tenantlake", "arn:aws:iam::200000000000:role/r")
    batches = {("agency-001", "Debt"): [Commit("agency-001", "Debt", "e", "2026-11-01", "FULL_EXPORT", "s", 5, 0)],
               ("agency-001", "Plan"): []}  # nothing published, yet the (fake) history holds 5 rows
    problems = post_load_checks(wh, batches)
    assert all("?" not in s for s, _ in conn.sent) and any("a.entity = %s" in s for s, _ in conn.sent)
    assert problems == ["agency-001 Plan: 5 rows in core.history_plan, 0 published in the lake"]


class CatalogConnection(FakeConnection):
    """A fake whose information_schema lists `marts` as existing."""

    def __init__(self, marts):
        super().__init__(copied=0)
        self.marts = marts

    def cursor(self):
        cur = super().cursor()
        cur.fetchall = lambda: [(m,) for m in self.marts]
        return cur


@pytest.mark.parametrize("existing", [[], ["agency_snapshot", "creditor_exposure", "enrolment_funnel",
                                          "agency_kpis_monthly", "creditor_exposure_by_agency",
                                          "plan_outcomes_by_cohort"]])
def test_refresh_keeps_the_rls_protected_marts_it_finds(registry, existing):
    """A DROP would take the attached RLS policy and the grants with it: an existing mart is
    emptied and refilled in the refresh's transaction instead."""
    from tenantlake.warehouse import RLS_MARTS

    conn = CatalogConnection(existing)
    RedshiftWarehouse(lambda: conn, "s3://central-lake/tenantlake", "arn:aws:iam::200000000000:role/r").refresh(registry)
    sent = [s for s, _ in conn.sent]
    assert conn.done == "commit"
    attached = (SQL / "security/row_level_security.sql").read_text()
    for mart in RLS_MARTS:
        assert f"ATTACH RLS POLICY tenant_isolation ON {mart} TO ROLE agency_analyst" in attached
        if existing:
            assert f"DROP TABLE IF EXISTS {mart}" not in sent and f"DELETE FROM {mart}" in sent
            insert = next(s for s in sent if s.startswith(f"INSERT INTO {mart}\n"))
            sqlglot.parse_one(insert, read="redshift")
        else:
            assert f"DROP TABLE IF EXISTS {mart}" in sent and any(s.startswith(f"CREATE TABLE {mart} ") for s in sent)
    assert ("DELETE FROM mart.creditor_exposure" in sent) == bool(existing)  # grants kept, though no policy
    assert "DROP TABLE IF EXISTS core.dim_consumer" in sent  # core is rebuilt: no analyst role reads it


def test_redshift_setup_creates_everything_before_it_is_used(redshift):
    import re

    script = redshift.setup_statements("tenantlake", "arn:aws:iam::200000000000:role/spectrum")
    created: set[str] = set()
    for statement in script:
        flat = " ".join(statement.split())
        for role in re.findall(r"TO ROLE (\w+)", flat) + re.findall(r"FROM ROLE (\w+)", flat):
            assert f"role {role}" in created, (role, flat[:90])
        if flat.startswith("ATTACH RLS POLICY"):
            for table in flat.split(" ON ")[1].split(" TO ")[0].split(", "):
                assert f"table {table}" in created, table
        if flat.startswith(("CREATE TABLE", "CREATE OR REPLACE VIEW", "CREATE EXTERNAL TABLE")):
            name = re.match(r"CREATE (?:OR REPLACE |EXTERNAL )?(?:TABLE|VIEW) (?:IF NOT EXISTS )?(\w+)\.(\w+)", flat)
            assert f"schema {name[1]}" in created, flat[:90]
            created.add(f"table {name[1]}.{name[2]}")
        if "f_pseudonym(" in flat and not flat.startswith("CREATE OR REPLACE VIEW"):  # views bind late
            assert "function f_pseudonym" in created, flat[:90]
        for kind, pattern in (("role", r"^CREATE ROLE (\w+)"), ("schema", r"^CREATE (?:EXTERNAL )?SCHEMA IF NOT EXISTS (\w+)"),
                              ("function", r"^CREATE OR REPLACE EXTERNAL FUNCTION (\w+)")):
            if m := re.match(pattern, flat):
                created.add(f"{kind} {m[1]}")
        if not flat.startswith("ATTACH RLS POLICY"):
            sqlglot.parse_one(statement, read="redshift")
    from tenantlake.contracts import ENTITIES
    from tenantlake.warehouse import CORE, MART
    expected = {f"table core.{t}" for t in CORE} | {f"table mart.{t}" for t in MART} | {
        f"table {s}.{e.lower()}" for e in ENTITIES for s in ("lake", "lake_protected", "stage")}
    assert expected <= created


def test_redshift_setup_command_prints_the_script_and_refuses_a_bad_value(capsys):
    from tenantlake import cli

    args = ["redshift-setup", "--lake", "s3://central-lake/tenantlake", "--copy-role",
            "arn:aws:iam::200000000000:role/copy", "--spectrum-role"]
    assert cli.main([*args, "arn:aws:iam::200000000000:role/spectrum"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("CREATE ROLE tenantlake_loader;") and "CREATE EXTERNAL SCHEMA IF NOT EXISTS lake" in out
    assert cli.main([*args, "arn:aws:iam::200000000000:role/it's"]) == 2
    assert capsys.readouterr().err.startswith("tenantlake redshift-setup: \"arn:aws:iam::200000000000:role/it's\" is not")


def test_redshift_refresh_loads_the_reference_data_dim_creditor_needs(registry):
    """dim_creditor joins ops.creditor_aliases: Redshift's refresh must fill it from the seed, as
    the embedded default's does (it once filled only the agency registry)."""
    import csv

    conn = CatalogConnection([])
    RedshiftWarehouse(lambda: conn, "s3://central-lake/tenantlake", "arn:aws:iam::200000000000:role/r").refresh(registry)
    with open(SQL / "seeds/creditor_aliases.csv", newline="") as f:
        seed = [(r["alias"], r["creditor"]) for r in csv.DictReader(f)]
    sent = [(s, p) for s, p in conn.sent if s.startswith("INSERT INTO ops.")]
    assert [p for s, p in sent if s == "INSERT INTO ops.creditor_aliases VALUES (%s, %s)"] == seed and seed
    assert [p[0] for s, p in sent if s.startswith("INSERT INTO ops.agency_registry")] == [t.tenant_id for t in registry.tenants]
    order = [s for s, _ in conn.sent]
    assert order.index("DELETE FROM ops.creditor_aliases") < order.index("DROP TABLE IF EXISTS core.dim_creditor")
