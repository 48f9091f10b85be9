"""The Redshift backend, without a Redshift: the statements it sends, in order, for known inputs
(a recording connection answers the catalog and load-history queries as Redshift would)."""

import json
import os
import re

import pytest
import sqlglot
from sqlglot import exp

from tenantlake.contracts import ENTITIES
from tenantlake.lake.batches import LakeFile, LoadBatch
from tenantlake.storage import LocalStore
from tenantlake.warehouse import render
from tenantlake.warehouse.catalogue import load_catalogue
from tenantlake.warehouse.redshift import RedshiftWarehouse

LAKE = "s3://central-lake/tenantlake"
ROLE = "arn:aws:iam::200000000000:role/redshift-copy"


def batch(tenant, export, rows, files=1, entity="Debt"):
    return LoadBatch(tenant, entity, export, "INCREMENTAL_EXPORT", rows, tuple(
        LakeFile(f"{LAKE}/tenantlake_protected/debt/data/tenant_id={tenant}/{export}-{i}.parquet", rows // files, 4096)
        for i in range(files)), snapshot_id=77)


class Recorder:
    """A DB-API connection that records what it is sent and answers as Redshift would: the audit
    knows `loaded`, stage holds `staged` rows per (stage table, tenant, export), the load history
    `history` (rows per file)."""

    def __init__(self, staged=None, history=None, loaded=(), columns=None):
        self.sent, self.transactions = [], []
        self.staged, self.history, self.loaded = staged or {}, history or {}, set(loaded)
        self.columns = columns

    def cursor(self):
        return Cursor(self)

    def commit(self):
        self.transactions.append("commit")

    def rollback(self):
        self.transactions.append("rollback")

    def close(self):
        pass


class Cursor:
    def __init__(self, conn):
        self.conn, self.rows, self.description = conn, [], [("n",)]

    def execute(self, sql, params=None):
        self.conn.sent.append((sql, params))
        flat = " ".join(sql.split())
        if "JOIN ops.load_audit" in flat:
            self.rows = sorted(self.conn.loaded)
        elif flat.startswith("SELECT tenant_id, _export_id, COUNT(*)"):
            table = re.search(r"FROM stage\.(\w+)", flat)[1]  # each entity's stage holds its own batches
            self.rows = [(t, x, n) for (e, t, x), n in self.conn.staged.items() if e == table]
        elif "sys_load_detail" in flat:
            self.rows = list(self.conn.history.items())
        elif "information_schema.columns" in flat:
            self.rows = self.conn.columns or []
        elif flat.startswith("SELECT COUNT(*)"):
            self.rows = [(0,)]
        else:
            self.rows = []

    def fetchall(self):
        return self.rows


@pytest.fixture
def redshift(tmp_path):
    def make(conn):
        return RedshiftWarehouse(lambda: conn, LAKE, ROLE, LocalStore(tmp_path))
    return make


def sent(conn):
    return [" ".join(s.split()) for s, _ in conn.sent]


def test_one_copy_over_a_manifest_of_every_new_file_of_every_tenant(redshift, tmp_path):
    new = [batch("agency-001", "e1", 10), batch("agency-002", "e1", 6, files=2), batch("agency-003", "e9", 4)]
    done = batch("agency-001", "e0", 3)
    conn = Recorder(staged={("debt", "agency-001", "e1"): 10, ("debt", "agency-002", "e1"): 6, ("debt", "agency-003", "e9"): 4},
                    history={f.path: f.rows for b in new for f in b.files}, loaded={("agency-001", "e0")})
    report = redshift(conn).load([*new, done], cursors={"Debt": 77})
    assert (report.loaded, report.skipped, report.failed) == (3, 1, [])
    statements = sent(conn)
    copies = [s for s in statements if s.startswith("COPY ")]
    assert len(copies) == 1 and conn.transactions == ["commit"]  # one COPY, one transaction, all tenants
    (manifest,) = tmp_path.glob("_manifests/Debt/*.json")
    assert copies[0] == (f"COPY stage.debt FROM '{LAKE}/_manifests/Debt/{manifest.name}' IAM_ROLE '{ROLE}' "
                         "FORMAT PARQUET SERIALIZETOJSON MANIFEST")
    entries = json.loads(manifest.read_text())["entries"]
    assert [e["url"] for e in entries] == [f.path for b in new for f in b.files]  # the replayed batch's: not
    assert all(e["mandatory"] and e["meta"]["content_length"] == 4096 for e in entries)
    # the load history is read for that COPY, then history, MERGE and the audit follow in order
    order = [next(i for i, s in enumerate(statements) if s.startswith(p)) for p in (
        "COPY stage.debt", "SELECT TRIM(file_name), SUM(lines_scanned) FROM sys_load_detail WHERE query_id = pg_last_copy_id()",
        "INSERT INTO core.history_debt", "INSERT INTO ops.refresh_pending", "INSERT INTO stage.debt_merge",
        "MERGE INTO core.current_debt", "INSERT INTO ops.load_audit", "DELETE FROM ops.load_cursor")]
    assert order == sorted(order)
    audit = next(p for s, p in conn.sent if s.startswith("INSERT INTO ops.load_audit"))
    assert [audit[i * 9:(i + 1) * 9][:6] for i in range(3)] == [
        ("agency-001", "Debt", "e1", "INCREMENTAL_EXPORT", 10, 10), ("agency-002", "Debt", "e1", "INCREMENTAL_EXPORT", 6, 6),
        ("agency-003", "Debt", "e9", "INCREMENTAL_EXPORT", 4, 4)]
    for s, _ in conn.sent:  # everything sent is SQL sqlglot reads as such
        render.parse(s.replace("%s", "NULL"))


@pytest.mark.parametrize(("history", "why"), [
    ({"short": 5}, "the load history shows 5 rows of {path}, the lake says 6"),
    ({}, "{path} is missing from the load history (SYS_LOAD_DETAIL)"),
])
def test_a_batch_the_load_history_contradicts_is_left_out_and_the_others_load(redshift, history, why):
    good, bad = batch("agency-001", "e1", 10), batch("agency-002", "e1", 6)
    files = {f.path: f.rows for f in good.files}
    if history:
        files[bad.files[0].path] = history["short"]
    conn = Recorder(staged={("debt", "agency-001", "e1"): 10, ("debt", "agency-002", "e1"): 6}, history=files)
    report = redshift(conn).load([good, bad])
    assert report.loaded == 1 and [(o.tenant_id, o.reason) for o in report.failed] == [
        ("agency-002", why.format(path=bad.files[0].path))]
    # its rows leave stage before history and the MERGE, in the same transaction
    statements = sent(conn)
    drop = next(i for i, s in enumerate(statements) if s.startswith("DELETE FROM stage.debt USING stage.load_batches"))
    assert drop < next(i for i, s in enumerate(statements) if s.startswith("INSERT INTO core.history_debt"))
    assert conn.transactions == ["commit"]


def test_a_file_whose_s3_path_is_longer_than_the_load_history_keeps_is_matched_on_what_it_keeps(redshift):
    """SYS_LOAD_DETAIL.file_name is CHAR(256): a longer path comes back cut, and was 'missing'."""
    long = LoadBatch("agency-001", "Debt", "e1", "INCREMENTAL_EXPORT", 10, (
        LakeFile(f"{LAKE}/tenantlake_protected/debt/data/tenant_id=agency-001/{'x' * 250}.parquet", 10, 4096),),
        snapshot_id=77)
    assert len(long.files[0].path) > 256
    conn = Recorder(staged={("debt", "agency-001", "e1"): 10}, history={long.files[0].path[:256]: 10})
    report = redshift(conn).load([long])
    assert (report.loaded, report.failed) == (1, [])


def test_a_batch_whose_staged_rows_disagree_is_left_out(redshift):
    good, bad = batch("agency-001", "e1", 10), batch("agency-002", "e1", 6)
    conn = Recorder(staged={("debt", "agency-001", "e1"): 10, ("debt", "agency-002", "e1"): 5},
                    history={f.path: f.rows for b in (good, bad) for f in b.files})
    report = redshift(conn).load([good, bad])
    assert [o.reason for o in report.failed] == ["staged 5 rows, the lake published 6"] and report.loaded == 1


def test_an_entity_whose_load_fails_rolls_back_alone(redshift):
    class Failing(Recorder):
        def cursor(self):
            cur = super().cursor()
            execute = cur.execute

            def fails_at_the_merge(sql, params=None):
                if sql.startswith("MERGE INTO core.current_debt"):
                    raise RuntimeError("disk full")
                execute(sql, params)
            cur.execute = fails_at_the_merge
            return cur

    debts, plans = batch("agency-001", "e1", 10), batch("agency-001", "p1", 2, entity="Plan")
    conn = Failing(staged={("debt", "agency-001", "e1"): 10, ("plan", "agency-001", "p1"): 2},
                   history={f.path: f.rows for b in (debts, plans) for f in b.files})
    report = redshift(conn).load([debts, plans])
    assert conn.transactions == ["rollback", "commit"]  # Debt's transaction, then Plan's
    assert report.problems == ["Debt: RuntimeError: disk full"] and report.loaded == 1
    assert [o.export_id for o in report.failed] == ["e1"]


def test_the_merge_keys_on_tenant_and_id_and_updates_every_column(redshift):
    conn = Recorder()
    merge = next(s for s in redshift(conn)._template("merge", "Debt"))
    tree = sqlglot.parse_one(merge, read="redshift")
    on = {c.sql("redshift") for c in tree.args["on"].find_all(exp.Column)}
    assert on == {"core.current_debt.tenant_id", "b.tenant_id", "core.current_debt.id", "b.id"}
    columns = load_catalogue()["core.current_debt"].column_names
    update = tree.find(exp.Update)
    assert [e.this.name for e in update.expressions] == columns  # Redshift's advice: update every column
    assert " AND (" not in merge.split("WHEN MATCHED")[1]  # Redshift's MERGE takes no condition there


def test_stage_tables_follow_the_protected_files_column_order():
    """COPY maps a Parquet file's columns by position: stage's order is the file's."""
    from tenantlake.formats.rows import lake_schema
    from tenantlake.privacy import protected_schema

    cat = load_catalogue()
    for name, e in ENTITIES.items():
        assert cat[f"stage.{name.lower()}"].column_names == protected_schema(e, lake_schema(e)).names


def test_large_items_and_nested_columns_are_super():
    debt = load_catalogue()["stage.debt"]
    assert {c.name: c.type for c in debt.columns if c.type == "SUPER"} == {"tags": "SUPER", "bureau": "SUPER"}
    ddl = render.sql(render.create_table(load_catalogue()["core.current_debt"], "redshift"), "redshift")
    assert "tags SUPER" in ddl and "DISTKEY(id)" in ddl and "COMPOUND SORTKEY(tenant_id, id, _event_ts)" in ddl
    assert "_extra" not in ddl  # undeclared attributes are unclassified: they never leave raw


def test_refresh_refills_tables_and_never_drops_one(redshift, registry):
    conn = Recorder()
    wh = redshift(conn)
    wh.refresh(registry, full=True)
    statements = sent(conn)
    assert not any(s.startswith("DROP") or s.startswith("CREATE TABLE") or s.startswith("TRUNCATE") for s in statements)
    for t in wh.derived:
        assert f"DELETE FROM {t.qualified}" in statements, t.qualified
        assert any(s.startswith(f"INSERT INTO {t.qualified} (") for s in statements), t.qualified
    assert conn.transactions == ["commit"]
    for s in statements:
        render.parse(s.replace("%s", "NULL"))


def test_what_a_refresh_sends_keeps_to_what_redshift_allows(redshift, registry):
    """Rules of Redshift's that sqlglot's parser does not enforce (and DuckDB, which runs the tests'
    warehouse, does not share), from the Redshift Developer Guide:
    - "You can't specify a WITH RECURSIVE clause inside a subquery" (WITH clause): core.dim_date's
      calendar was sent as INSERT ... SELECT ... FROM (WITH RECURSIVE ...) AS _q;
    - a bare text parameter reaches Redshift as UNKNOWN (redshift_connector's str), which a select
      list under DISTINCT cannot take: it is cast."""
    conn = Recorder()
    wh = redshift(conn)
    wh.refresh(registry, full=True)
    wh.reload_tenant("agency-001", [])
    recursive = 0
    for s, _ in conn.sent:
        tree = sqlglot.parse_one(s, read="redshift")
        for w in tree.find_all(exp.With):
            recursive += bool(w.args.get("recursive"))
            assert not (w.args.get("recursive") and w.find_ancestor(exp.Subquery)), s
        for select in tree.find_all(exp.Select):
            if select.args.get("distinct"):
                assert not any(isinstance(e, exp.Placeholder) or (isinstance(e, exp.Parameter)) or e.sql() == "%s"
                               for e in select.expressions), s
    assert recursive >= 1  # the calendar was among them
    assert any("SELECT DISTINCT CAST(%s AS VARCHAR(64))" in s for s, _ in conn.sent)


def test_an_incremental_refresh_deletes_and_inserts_only_the_affected_keys(redshift):
    wh = redshift(Recorder())
    empty, fill, delete, insert = wh._statements(wh.catalogue["core.dim_consumer"], "keys")
    assert fill.startswith("INSERT INTO stage.core_dim_consumer_keys (tenant_id, consumer_key) SELECT")
    assert delete == ("DELETE FROM core.dim_consumer USING stage.core_dim_consumer_keys AS _k "
                      "WHERE _k.tenant_id = core.dim_consumer.tenant_id AND _k.consumer_key = core.dim_consumer.consumer_key")
    # history is read only for the affected keys, and only their rows are inserted
    assert "FROM core.history_consumer AS _n WHERE EXISTS(SELECT 1 FROM stage.core_dim_consumer_keys AS _k " \
           "WHERE _k.tenant_id = _n.tenant_id AND _k.consumer_key = _n.consumer_key)" in insert
    assert insert.startswith("INSERT INTO core.dim_consumer (consumer_key, tenant_id, version")


def test_promotion_adds_one_column_per_statement(redshift):
    from tenantlake.warehouse.catalogue import Column

    wh = redshift(Recorder())
    t = wh.catalogue["core.current_debt"]
    column = Column("risk_score", "BIGINT", "The bureau's risk score.")
    statements = wh._add_column_statements(t, column)
    assert statements == [
        "ALTER TABLE core.current_debt ADD COLUMN risk_score BIGINT",
        "COMMENT ON COLUMN core.current_debt.risk_score IS 'The bureau\\'s risk score.'"]
    for s in statements:
        render.parse(s)


# ---- the setup script ----------------------------------------------------------------------------

def test_setup_creates_everything_before_it_is_used(redshift):
    script = redshift(Recorder()).setup_statements("tenantlake", "arn:aws:iam::200000000000:role/spectrum")
    created: set[str] = set()
    for statement in script:
        flat = " ".join(statement.split())
        for role in re.findall(r"(?:TO|FROM) ROLE (\w+)", flat):
            assert f"role {role}" in created, (role, flat[:90])
        if flat.startswith("ATTACH RLS POLICY"):
            assert "policy tenant_isolation" in created
            for table in flat.split(" ON ")[1].split(" TO ")[0].split(", "):
                assert f"table {table}" in created, table
        if flat.startswith("CREATE RLS POLICY"):
            assert "table ops.analyst_tenant" in created  # its lookup table
            created.add("policy tenant_isolation")
        if flat.startswith("GRANT SELECT ON TABLE ops.analyst_tenant TO RLS POLICY"):
            assert "policy tenant_isolation" in created
            created.add("lookup granted")
        if flat.startswith("ALTER TABLE") and "ROW LEVEL SECURITY ON" in flat:
            # the policy may read its lookup table (Redshift asks for the grant explicitly now)
            assert "lookup granted" in created, flat
        if m := re.match(r"CREATE (?:OR REPLACE )?(?:TABLE|VIEW) (?:IF NOT EXISTS )?(\w+)\.(\w+)", flat):
            assert f"schema {m[1]}" in created, flat[:90]
            created.add(f"table {m[1]}.{m[2]}")
        if m := re.match(r"CREATE (?:EXTERNAL )?SCHEMA IF NOT EXISTS (\w+)", flat):
            created.add(f"schema {m[1]}")
        if m := re.match(r"CREATE ROLE (\w+)", flat):
            created.add(f"role {m[1]}")
        if m := re.match(r"COMMENT ON (?:TABLE|VIEW|COLUMN) (\w+)\.(\w+)", flat):
            assert f"table {m[1]}.{m[2]}" in created, flat[:90]
    assert "CREATE EXTERNAL SCHEMA IF NOT EXISTS lake FROM DATA CATALOG DATABASE 'tenantlake_raw' " \
           "IAM_ROLE 'arn:aws:iam::200000000000:role/spectrum'" in script
    assert "CREATE EXTERNAL SCHEMA IF NOT EXISTS lake_protected_ext FROM DATA CATALOG DATABASE " \
           "'tenantlake_protected' IAM_ROLE 'arn:aws:iam::200000000000:role/spectrum'" in script
    assert not any("PARTITION" in s or "CREATE EXTERNAL TABLE" in s for s in script)  # Iceberg needs none
    assert "CREATE OR REPLACE VIEW lake_protected.debt AS SELECT tenant_id, id, " in " ".join(script)
    assert all(s.endswith("WITH NO SCHEMA BINDING") for s in script if s.startswith("CREATE OR REPLACE VIEW"))


def test_redshift_setup_command_prints_the_script_and_refuses_a_bad_value(capsys):
    from tenantlake import cli

    args = ["redshift-setup", "--lake", LAKE, "--copy-role", ROLE, "--spectrum-role"]
    assert cli.main([*args, "arn:aws:iam::200000000000:role/spectrum"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("CREATE ROLE tenantlake_loader;") and "CREATE EXTERNAL SCHEMA IF NOT EXISTS lake " in out
    assert cli.main([*args, "arn:aws:iam::200000000000:role/it's"]) == 2
    assert "is not a IAM role ARN that may be written into SQL" in capsys.readouterr().err


def test_values_that_could_break_out_of_a_literal_are_refused():
    with pytest.raises(ValueError, match="may be written into SQL"):
        RedshiftWarehouse(lambda: None, "s3://lake/x' OR 1=1 --", ROLE)
    wh = RedshiftWarehouse(lambda: None, LAKE, ROLE)
    with pytest.raises(ValueError, match="may be written into SQL"):
        wh.manifest([LakeFile("s3://lake/it's.parquet", 1, 1)])


@pytest.mark.skipif(not os.environ.get("REDSHIFT_HOST"), reason="live Redshift test: set REDSHIFT_HOST, "
                    "REDSHIFT_USER, REDSHIFT_PASSWORD, REDSHIFT_DATABASE to run it")
def test_live_redshift_accepts_the_ddl():  # pragma: no cover - needs a real cluster
    import redshift_connector

    conn = redshift_connector.connect(host=os.environ["REDSHIFT_HOST"], user=os.environ["REDSHIFT_USER"],
                                      password=os.environ["REDSHIFT_PASSWORD"], database=os.environ["REDSHIFT_DATABASE"])
    cur = conn.cursor()
    wh = RedshiftWarehouse(lambda: conn, LAKE, ROLE)
    for schema in ("stage", "core", "mart", "ops"):
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for t in ("stage.debt", "core.current_debt", "core.dim_consumer", "mart.agency_snapshot"):
        for s in wh._create_statements(wh.catalogue[t]):
            cur.execute(s)
    conn.rollback()
