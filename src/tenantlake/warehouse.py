"""The warehouse, behind one small interface: Redshift in production, DuckDB as the embedded default.

The same sql/ files drive both. They are written in Redshift's dialect; DuckDB runs them through
sqlglot, except where a `<table>.duckdb.sql` beside the file says transpiling cannot serve (the
seam stays visible). Per-entity tables (stage, history, current) are rendered from the contracts:
history_<entity> keeps every version ever loaded, current_<entity> the latest by event time.

A batch (tenant, entity, export) is staged and its row count checked against its commit marker;
then one transaction appends its versions to history, MERGEs latest-wins into current and records
it in ops.load_audit. A batch already in the audit is skipped, so replays change nothing.
Dimensions, facts and marts are then rebuilt from core in one transaction.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

import pyarrow as pa
import pyarrow.parquet as pq

from tenantlake.contracts import ENTITIES
from tenantlake.formats.rows import lake_schema
from tenantlake.lake import Commit, commits
from tenantlake.lake_access import protected_view
from tenantlake.settings import REPO

SQL = REPO / "sql"
OPS = ["load_audit", "agency_registry", "creditor_aliases"]
CORE = ["dim_agency", "dim_date", "dim_creditor", "dim_consumer", "dim_counselor", "bridge_plan_debt",
        "fact_payment", "fact_plan", "fact_debt_snapshot", "fact_application", "fact_budget"]
MART = ["agency_kpis_monthly", "agency_snapshot", "creditor_exposure", "creditor_exposure_by_agency",
        "enrolment_funnel", "plan_outcomes_by_cohort"]
TENANT_MARTS = ["agency_kpis_monthly", "agency_snapshot", "creditor_exposure_by_agency", "enrolment_funnel",
                "plan_outcomes_by_cohort"]
RLS_MARTS = [f"mart.{t}" for t in TENANT_MARTS]  # the tables sql/security/row_level_security.sql protects
logging.getLogger("sqlglot").setLevel(logging.ERROR)  # it warns for every DISTKEY it drops
WRITES_STAGE = re.compile(r"^(INSERT INTO|DELETE FROM) stage\.", re.IGNORECASE)


class LoadError(RuntimeError):
    """A batch could not be applied; the warehouse is as it was before it."""


@cache
def sql_text(schema: str, table: str, dialect: str = "redshift", **context: str) -> str:
    """A table's SQL in a dialect: the file itself, a per-dialect override, or a transpilation;
    a template's {{ names }} are filled from `context` first. Kept once made: sqlglot takes ~20 ms
    a statement, and every batch's load runs the same two templates."""
    override = SQL / schema / f"{table}.{dialect}.sql"
    if dialect != "redshift" and override.exists():
        return render(override.read_text(), **context)
    text = render((SQL / schema / f"{table}.sql").read_text(), **context)
    if dialect == "redshift":
        return text
    import sqlglot

    # statement by statement, comments dropped first (sqlglot would keep them as /* */ blocks)
    return ";\n".join(sqlglot.transpile(stmt, read="redshift", write=dialect)[0] for stmt in statements(text))


def render(text: str, **context: str) -> str:
    """Fill {{ name }} from a small explicit context (identifiers only, never values)."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: context[m.group(1)], text)


def statements(text: str) -> list[str]:
    """A file's statements: comment lines dropped, then split on ';' (our SQL keeps neither '--'
    nor ';' inside string literals)."""
    code = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in code.split(";") if s.strip()]


def entity_table(entity: str) -> str:
    return entity.lower()


def merge_context(entity: str) -> dict:
    cols = [f.name for f in lake_schema(ENTITIES.get(entity))] + ["_op_rank", "_removed"]
    return {"entity": entity_table(entity), "columns": ", ".join(cols), "b_columns": ", ".join(f"b.{c}" for c in cols),
            "update_set": ", ".join(f"{c} = b.{c}" for c in cols if c not in ("tenant_id", "id"))}


CTAS = re.compile(r"^CREATE TABLE (?P<name>\w+\.\w+)\b.*?\sAS\s+(?P<query>(?:WITH|SELECT)\b.*)$",
                  re.DOTALL | re.IGNORECASE)


def refill(statement: str) -> list[str]:
    """A table's CREATE TABLE ... AS <query>, as DELETE and INSERT into the table that exists: it
    keeps its grants and attached RLS policies, which a DROP would take with it."""
    m = CTAS.match(statement)
    if not m:
        raise ValueError(f"not a CREATE TABLE ... AS query: {statement[:80]}")
    return [f"DELETE FROM {m['name']}", f"INSERT INTO {m['name']}\n{m['query']}"]


def rebuild_statements(dialect: str, keep: frozenset[str] = frozenset()) -> Iterator[str]:
    """Dimensions, facts and marts rebuilt in dependency order (with their comments): dropped and
    created, except the tables in `keep` (schema.table), which are emptied and refilled."""
    for schema, tables in (("core", CORE), ("mart", MART)):
        for table in tables:
            create, *rest = statements(sql_text(schema, table, dialect))
            if f"{schema}.{table}" in keep:
                yield from refill(create)
            else:
                yield f"DROP TABLE IF EXISTS {schema}.{table}"
                yield create
            yield from rest


def reference_data(registry) -> dict[str, list[tuple]]:
    """The ops tables refilled before every rebuild: the agencies from the registry, the creditor
    aliases from sql/seeds."""
    aliases = [tuple(line.split(",")) for line in (SQL / "seeds/creditor_aliases.csv").read_text().splitlines()[1:]]
    return {"agency_registry": [(t.tenant_id, t.display_name, t.aws_account_id, t.region) for t in registry.tenants],
            "creditor_aliases": aliases}


def refill_reference_data(cur, registry, placeholder: str) -> None:
    for table, rows in reference_data(registry).items():
        cur.execute(f"DELETE FROM ops.{table}")
        for row in rows:
            cur.execute(f"INSERT INTO ops.{table} VALUES ({', '.join([placeholder] * len(row))})", row)


@dataclass
class LoadResult:
    tenant_id: str
    entity: str
    export_id: str
    rows: int
    skipped: bool


class DuckDBWarehouse:
    """The embedded default: a DuckDB file. Local Parquet batches are read by DuckDB itself, batches
    in S3 through pyarrow."""

    dialect = "duckdb"
    placeholder = "?"

    def __init__(self, path: str, key_for: Callable[[str], bytes]):
        import duckdb

        from tenantlake.pseudonyms import pseudonym

        self.con = duckdb.connect(path)
        self.con.execute("SET TimeZone = 'UTC'")  # months and days are UTC, as the source's timestamps
        # stage.* is scratch: an in-memory database, so batches are never written to the file twice.
        self.con.execute("ATTACH ':memory:' AS stage")
        keys: dict[str, bytes] = {}
        known: dict[tuple[str, str], str] = {}  # facts name the same consumer on many rows

        def f_pseudonym(tenants: pa.Array, ids: pa.Array) -> pa.Array:
            out = []
            for t, i in zip(tenants.to_pylist(), ids.to_pylist(), strict=True):
                if t is None or i is None:
                    out.append(None)
                    continue
                p = known.get((t, i))
                if p is None:
                    if t not in keys:
                        keys[t] = key_for(t)
                    p = known[(t, i)] = pseudonym(keys[t], t, i)
                out.append(p)
            return pa.array(out, pa.string())

        self.con.create_function("f_pseudonym", f_pseudonym, ["VARCHAR", "VARCHAR"], "VARCHAR", type="arrow",
                                 side_effects=False)
        for schema in ("lake", "lake_protected", "core", "mart", "ops", "mart_agency"):
            self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for table in OPS:
            self.con.execute(sql_text("ops", table, self.dialect))
        for entity in ENTITIES:
            self._entity_tables(entity)

    def _entity_tables(self, entity: str) -> None:
        name = entity_table(entity)
        self.con.register("_shape", lake_schema(ENTITIES[entity]).empty_table())
        self.con.execute(f"CREATE TABLE IF NOT EXISTS stage.{name} AS SELECT * FROM _shape")
        self.con.execute(f"CREATE TABLE IF NOT EXISTS core.history_{name} AS "
                         "SELECT *, CAST(0 AS INTEGER) AS _op_rank FROM _shape")
        for table in (f"core.current_{name}", f"stage.{name}_merge"):
            self.con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS "
                             "SELECT *, CAST(0 AS INTEGER) AS _op_rank, FALSE AS _removed FROM _shape")
        self.con.unregister("_shape")

    def register_lake(self, entity: str, batches: list[Commit], lake) -> None:
        """The Spectrum stand-in: lake.<entity> is a view over the committed files of every tenant
        (DuckDB reads local files only here: this build has no httpfs for S3), and
        lake_protected.<entity> the analysts' way into it."""
        from tenantlake.storage import LocalStore

        files = [f for c in batches for f in c.files] if isinstance(lake, LocalStore) else []
        if files:
            self.con.execute(f"CREATE OR REPLACE VIEW lake.{entity_table(entity)} AS "
                             f"SELECT * FROM {parquet_scan(lake, files)}")
            if entity in ENTITIES:
                self.con.execute(protected_view(entity, self.dialect))

    def loaded(self, c: Commit) -> bool:
        return bool(self.con.execute(
            "SELECT COUNT(*) FROM ops.load_audit WHERE tenant_id = ? AND entity = ? AND export_id = ?",
            [c.tenant_id, c.entity, c.export_id]).fetchone()[0])

    def load_batch(self, c: Commit, lake) -> LoadResult:
        if c.entity not in ENTITIES:
            raise LoadError(f"{c.entity}: no contract, so no warehouse tables (it stays in the lake)")
        if self.loaded(c):
            return LoadResult(c.tenant_id, c.entity, c.export_id, 0, True)
        name = entity_table(c.entity)
        con = self.con
        con.execute(f"DELETE FROM stage.{name}")
        self._stage(c, lake, f"stage.{name}")
        staged, other = con.execute(f"SELECT COUNT(*), COUNT(*) FILTER (WHERE tenant_id <> ?) FROM stage.{name}",
                                    [c.tenant_id]).fetchone()
        if staged != c.rows or other:
            raise LoadError(f"{c.tenant_id} {c.entity} {c.export_id}: staged {staged} rows ({other} of another "
                            f"tenant), the commit marker says {c.rows}")
        # DuckDB writes one attached database per transaction: the statements that fill scratch
        # tables (the MERGE's winners) run first; the batch's one transaction then holds every
        # write to core and the audit, so the batch is still all or nothing.
        scratch, durable = [], []
        for template in ("_entity_history", "_entity_current"):
            for statement in statements(sql_text("core", template, self.dialect, **merge_context(c.entity))):
                (scratch if WRITES_STAGE.match(statement) else durable).append(statement)
        for statement in scratch:
            con.execute(statement)
        with self._transaction() as con:
            for statement in durable:
                con.execute(statement)
            con.execute("INSERT INTO ops.load_audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [c.tenant_id, c.entity, c.export_id, c.kind, c.rows, staged, len(c.files),
                         datetime.now(UTC).replace(tzinfo=None)])
        return LoadResult(c.tenant_id, c.entity, c.export_id, staged, False)

    def _stage(self, c: Commit, lake, table: str) -> None:
        """A batch's files into a stage table: DuckDB reads local files itself, streaming; files in
        S3 come through pyarrow (this build has no httpfs)."""
        from tenantlake.storage import LocalStore

        if isinstance(lake, LocalStore) and c.files:
            self.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {parquet_scan(lake, c.files)}")
            return
        for f in c.files:
            self.con.register("_batch", pq.read_table(io.BytesIO(lake.get(f["key"]))))
            self.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _batch")
            self.con.unregister("_batch")

    def refresh(self, registry) -> None:
        """Rebuild dimensions, facts and marts from core, in one transaction."""
        with self._transaction() as con:
            refill_reference_data(con, registry, self.placeholder)
            for statement in rebuild_statements(self.dialect):
                con.execute(statement)
            for table in TENANT_MARTS:
                # The DuckDB stand-in for row-level security: an agency session sets its tenant.
                con.execute(f"CREATE OR REPLACE VIEW mart_agency.{table} AS SELECT * FROM mart.{table} "
                            "WHERE tenant_id = getvariable('tenantlake_tenant')")

    @contextmanager
    def _transaction(self):
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def query(self, sql: str, params: list | None = None) -> list[dict]:
        cur = self.con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def close(self) -> None:
        self.con.close()

    def as_agency(self, tenant_id: str) -> None:
        """Make this session an agency analyst's: mart_agency.* shows only this tenant."""
        self.con.execute("SET VARIABLE tenantlake_tenant = ?", [tenant_id])


def parquet_scan(lake, files: list[dict]) -> str:
    """DuckDB's read of a local lake's committed files (columns from the files, not their paths)."""
    listing = ", ".join(literal(str(lake.path(f["key"])), LOCAL_PATH) for f in files)
    return f"read_parquet([{listing}], hive_partitioning = false)"


def lake_batches(lake, registry) -> dict[tuple[str, str], list[Commit]]:
    """Every commit marker, read once: (tenant_id, entity) -> its batches, oldest export first."""
    return {(t.tenant_id, e): commits(lake, e, t.tenant_id) for t in registry.tenants for e in ENTITIES}


def load_lake(warehouse, lake, registry, tenants: list[str] | None = None, refresh: bool = True,
              batches: dict | None = None) -> dict:
    """Apply every committed batch not yet loaded (oldest export first per table), per tenant in
    isolation, then rebuild core and marts. Returns counts and the failures (tenant: reason)."""
    batches = batches if batches is not None else lake_batches(lake, registry)
    loaded, skipped, failed = 0, 0, {}
    for entity in ENTITIES:  # new partitions first, so lake.* (Spectrum) sees what core will hold
        warehouse.register_lake(entity, [c for (_, e), cs in batches.items() if e == entity for c in cs], lake)
    for tenant in registry.tenants:
        if tenants and tenant.tenant_id not in tenants:
            continue
        try:
            for entity in tenant.tables:
                for c in batches[(tenant.tenant_id, entity)]:
                    r = warehouse.load_batch(c, lake)
                    skipped += r.skipped
                    loaded += not r.skipped
        except Exception as e:  # noqa: BLE001 - one tenant's failure must not stop the others
            failed[tenant.tenant_id] = f"{type(e).__name__}: {e}"
    if refresh:
        warehouse.refresh(registry)
    return {"loaded": loaded, "skipped": skipped, "failed": failed}


# ---- Redshift ------------------------------------------------------------------------------------

S3_URL = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9!_.*()/=-]*)?$")  # never a quote
LOCAL_PATH = re.compile(r"^/[A-Za-z0-9_./=-]+$")
GLUE_NAME = re.compile(r"^[a-z0-9_]{1,255}$")
SCHEMAS = ("stage", "core", "mart", "ops", "lake_protected")  # lake is the external schema
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]+$")


def literal(value: str, pattern: re.Pattern) -> str:
    """COPY and ALTER TABLE take their locations as literals, not parameters: only values that match
    a strict pattern (no quotes possible) are ever written into the statement."""
    if not pattern.fullmatch(value):
        raise ValueError(f"{value!r} is not a value that may be written into SQL")
    return f"'{value}'"


# Arrow type test -> Redshift type, first match wins; structs and lists load into SUPER.
REDSHIFT_TYPES = [(pa.types.is_timestamp, "TIMESTAMPTZ"), (pa.types.is_date, "DATE"),
                  (pa.types.is_boolean, "BOOLEAN"), (pa.types.is_int32, "INTEGER"),
                  (pa.types.is_integer, "BIGINT"), (pa.types.is_binary, "VARBYTE")]


def redshift_type(t: pa.DataType, name: str = "") -> str:
    if pa.types.is_string(t):
        return "VARCHAR(128)" if name in ("tenant_id", "id") or name.endswith("_id") else "VARCHAR(4096)"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    return next((rs for test, rs in REDSHIFT_TYPES if test(t)), "SUPER")


def spectrum_type(t: pa.DataType) -> str:
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{f.name}:{spectrum_type(f.type)}" for f in t) + ">"
    if pa.types.is_list(t):
        return f"array<{spectrum_type(t.value_type)}>"
    if pa.types.is_timestamp(t):
        return "timestamp"
    return redshift_type(t).lower().replace("timestamptz", "timestamp").replace("super", "varchar(65535)")


class RedshiftWarehouse:
    """Production: Redshift, loaded by COPY ... FORMAT AS PARQUET MANIFEST from committed batches.

    `connect` returns a DB-API connection (redshift_connector, or the amazon provider's
    RedshiftSQLHook(...).get_conn()); `lake_url` is s3://bucket/prefix of the lake; `manifests` is the
    store COPY manifests are written to (the lake itself, under _manifests/)."""

    dialect = "redshift"
    placeholder = "%s"

    def __init__(self, connect: Callable, lake_url: str, iam_role: str, manifests=None):
        self.connect, self.lake_url, self.iam_role, self.manifests = connect, lake_url.rstrip("/"), iam_role, manifests
        literal(self.lake_url + "/", S3_URL)
        literal(iam_role, ROLE_ARN)

    # statements (pure: asserted as text in tests)
    def entity_ddl(self, entity: str) -> list[str]:
        name = entity_table(entity)
        cols = [f"{f.name} {redshift_type(f.type, f.name)}{' NOT NULL' if not f.nullable else ''}"
                for f in lake_schema(ENTITIES[entity])]
        layout = "DISTKEY (id) COMPOUND SORTKEY (tenant_id, id, _event_ts)"
        extra_current = ["_op_rank INTEGER", "_removed BOOLEAN"]
        return [f"CREATE TABLE IF NOT EXISTS stage.{name} ({', '.join(cols)}) DISTKEY (id)",
                f"CREATE TABLE IF NOT EXISTS core.history_{name} ({', '.join(cols + extra_current[:1])}) {layout}",
                f"CREATE TABLE IF NOT EXISTS core.current_{name} ({', '.join(cols + extra_current)}) {layout}",
                f"CREATE TABLE IF NOT EXISTS stage.{name}_merge ({', '.join(cols + extra_current)}) DISTKEY (id)"]

    def external_table_ddl(self, entity: str) -> str:
        """The Spectrum table over raw/ (tenant_id and export_date come from the partition path)."""
        cols = [f"{f.name} {spectrum_type(f.type)}" for f in lake_schema(ENTITIES[entity]) if f.name != "tenant_id"]
        location = literal(f"{self.lake_url}/raw/{entity}/", S3_URL)
        return (f"CREATE EXTERNAL TABLE lake.{entity_table(entity)} ({', '.join(cols)}) "
                "PARTITIONED BY (tenant_id VARCHAR(64), export_date VARCHAR(10)) "
                f"STORED AS PARQUET LOCATION {location}")

    def add_partitions(self, entity: str, batches: list[Commit]) -> list[str]:
        """Register the batches' partitions, idempotently, up to 100 per statement."""
        parts = sorted({(c.tenant_id, c.export_date) for c in batches})
        clauses = [f"PARTITION (tenant_id = {literal(t, re.compile(r'^[a-z0-9-]+$'))}, "
                   f"export_date = {literal(d, re.compile(r'^[0-9]{4}-[0-9]{2}-[0-9]{2}$'))}) "
                   f"LOCATION {literal(f'{self.lake_url}/raw/{entity}/tenant_id={t}/export_date={d}/', S3_URL)}"
                   for t, d in parts]
        return [f"ALTER TABLE lake.{entity_table(entity)} ADD IF NOT EXISTS " + " ".join(clauses[i:i + 100])
                for i in range(0, len(clauses), 100)]

    def register_lake(self, entity: str, batches: list[Commit], lake) -> None:
        """ADD PARTITION on an external table may not run in a transaction block: autocommit."""
        conn = self.connect()
        try:
            conn.autocommit = True
            cur = conn.cursor()
            for sql in self.add_partitions(entity, batches):
                cur.execute(sql)
        finally:
            conn.close()

    def setup_statements(self, glue_database: str, spectrum_role: str) -> list[str]:
        """Everything a new Redshift database needs, in order: roles, schemas, the Spectrum schema
        on Glue, f_pseudonym, the ops and per-entity tables, the external tables, core and marts
        (created empty, so policies and grants have tables to attach to), row-level security, the
        protected views and the grants. Run once, by an administrator; loads never run it."""
        out = statements(sql_text("security", "roles"))
        out += [f"CREATE SCHEMA IF NOT EXISTS {schema}" for schema in SCHEMAS]
        out.append(f"CREATE EXTERNAL SCHEMA IF NOT EXISTS lake FROM DATA CATALOG DATABASE "
                   f"{literal(glue_database, GLUE_NAME)} IAM_ROLE {literal(spectrum_role, ROLE_ARN)} "
                   "CREATE EXTERNAL DATABASE IF NOT EXISTS")
        out += statements(sql_text("security", "f_pseudonym"))
        out += [s for table in OPS for s in statements(sql_text("ops", table))]
        for entity in ENTITIES:
            out += [*self.entity_ddl(entity), self.external_table_ddl(entity)]
        out += rebuild_statements(self.dialect)
        out += statements(sql_text("security", "row_level_security"))
        out += [protected_view(entity, self.dialect) for entity in ENTITIES]
        out += statements(sql_text("security", "lake_access"))
        return out

    def copy_manifest(self, c: Commit) -> dict:
        return {"entries": [{"url": f"{self.lake_url}/{f['key']}", "mandatory": True,
                             "meta": {"content_length": f["bytes"]}} for f in c.files]}

    def manifest_key(self, c: Commit) -> str:
        return f"_manifests/{c.entity}/tenant_id={c.tenant_id}/{c.export_id}.json"

    def batch_statements(self, c: Commit) -> list[tuple[str, tuple]]:
        """The batch's transaction: (statement, bound parameters) in order."""
        name = entity_table(c.entity)
        manifest = literal(f"{self.lake_url}/{self.manifest_key(c)}", S3_URL)
        context = merge_context(c.entity)
        return [
            (f"DELETE FROM stage.{name}", ()),
            (f"COPY stage.{name} FROM {manifest} IAM_ROLE {literal(self.iam_role, ROLE_ARN)} "
             "FORMAT AS PARQUET MANIFEST", ()),
            ("SELECT pg_last_copy_count()", ()),
            *[(s, ()) for s in statements(sql_text("core", "_entity_history", self.dialect, **context))],
            *[(s, ()) for s in statements(sql_text("core", "_entity_current", self.dialect, **context))],
            ("INSERT INTO ops.load_audit VALUES (%s, %s, %s, %s, %s, %s, %s, GETDATE())",
             (c.tenant_id, c.entity, c.export_id, c.kind, c.rows, c.rows, len(c.files))),
        ]

    def load_batch(self, c: Commit, lake) -> LoadResult:
        import orjson

        with self._transaction() as cur:
            cur.execute("SELECT COUNT(*) FROM ops.load_audit "
                        "WHERE tenant_id = %s AND entity = %s AND export_id = %s", (c.tenant_id, c.entity, c.export_id))
            if cur.fetchone()[0]:
                return LoadResult(c.tenant_id, c.entity, c.export_id, 0, True)
            self.manifests.put(self.manifest_key(c), orjson.dumps(self.copy_manifest(c)))
            for sql, params in self.batch_statements(c):
                cur.execute(sql, params or None)
                if sql.startswith("SELECT pg_last_copy_count"):
                    copied = cur.fetchone()[0]
                    if copied != c.rows:
                        raise LoadError(f"{c.tenant_id} {c.entity} {c.export_id}: COPY loaded {copied} rows, "
                                        f"the commit marker says {c.rows}")
        return LoadResult(c.tenant_id, c.entity, c.export_id, c.rows, False)

    def query(self, sql: str, params: list | None = None) -> list[dict]:
        with self._transaction() as cur:
            cur.execute(sql, params or None)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def refresh(self, registry) -> None:
        """Rebuild core and marts in one transaction. Marts that exist are refilled, not dropped:
        their grants and RLS policies (sql/security) stay attached, so no refresh leaves an
        agency's analyst looking at every tenant, or BI tools refused (redshift-setup creates them
        before the policies are attached; a refresh creates any that are missing). A mart whose
        columns change must be dropped once by hand (its INSERT fails until then, naming it)."""
        with self._transaction() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'mart'")
            existing = {f"mart.{name}" for (name,) in cur.fetchall()}
            refill_reference_data(cur, registry, self.placeholder)
            for statement in rebuild_statements(self.dialect, frozenset(f"mart.{t}" for t in MART) & existing):
                cur.execute(statement)

    @contextmanager
    def _transaction(self):
        conn = self.connect()
        try:
            yield conn.cursor()
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()
