"""The warehouse, behind one small interface: Redshift in production, DuckDB as the embedded default.

The same sql/ files drive both. They are written in Redshift's dialect; DuckDB runs them through
sqlglot, except where a `<table>.duckdb.sql` beside the file says transpiling cannot serve (the
seam stays visible). Per-entity tables (stage, history, current) are rendered from the contracts:
history_<entity> keeps every version ever loaded, current_<entity> the latest by event time.

A batch (tenant, entity, export) is applied in one transaction: stage it, check the row count
against its commit marker, append its versions, MERGE latest-wins into current, record it in
ops.load_audit. A batch already in the audit is skipped, so replays change nothing. Dimensions,
facts and marts are then rebuilt from core in one transaction.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq

from tenantlake.contracts import ENTITIES
from tenantlake.formats.rows import lake_schema
from tenantlake.lake import Commit, commits
from tenantlake.settings import REPO

SQL = REPO / "sql"
OPS = ["load_audit", "agency_registry", "creditor_aliases"]
CORE = ["dim_agency", "dim_date", "dim_creditor", "dim_consumer", "dim_counselor", "bridge_plan_debt",
        "fact_payment", "fact_plan", "fact_debt_snapshot", "fact_application", "fact_budget"]
MART = ["agency_kpis_monthly", "agency_snapshot", "creditor_exposure", "creditor_exposure_by_agency",
        "enrolment_funnel", "plan_outcomes_by_cohort"]
TENANT_MARTS = ["agency_kpis_monthly", "agency_snapshot", "creditor_exposure_by_agency", "enrolment_funnel",
                "plan_outcomes_by_cohort"]
logging.getLogger("sqlglot").setLevel(logging.ERROR)  # it warns for every DISTKEY it drops


class LoadError(RuntimeError):
    """A batch could not be applied; the warehouse is as it was before it."""


def sql_text(schema: str, table: str, dialect: str = "redshift", **context: str) -> str:
    """A table's SQL in a dialect: the file itself, a per-dialect override, or a transpilation;
    a template's {{ names }} are filled from `context` first."""
    override = SQL / schema / f"{table}.{dialect}.sql"
    if dialect != "redshift" and override.exists():
        return render(override.read_text(), **context)
    text = render((SQL / schema / f"{table}.sql").read_text(), **context)
    if dialect == "redshift":
        return text
    import sqlglot

    return ";\n".join(sqlglot.transpile(text, read="redshift", write=dialect))


def render(text: str, **context: str) -> str:
    """Fill {{ name }} from a small explicit context (identifiers only, never values)."""
    out = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: context[m.group(1)], text)
    return out


def entity_table(entity: str) -> str:
    return entity.lower()


def merge_context(entity: str) -> dict:
    cols = [f.name for f in lake_schema(ENTITIES.get(entity))] + ["_op_rank", "_removed"]
    return {"entity": entity_table(entity), "columns": ", ".join(cols),
            "values": ", ".join(f"b.{c}" for c in cols),
            "update_set": ", ".join(f"{c} = b.{c}" for c in cols if c not in ("tenant_id", "id"))}


@dataclass
class LoadResult:
    tenant_id: str
    entity: str
    export_id: str
    rows: int
    skipped: bool


class DuckDBWarehouse:
    """The embedded default: a DuckDB file; Parquet batches are read with pyarrow (local or S3)."""

    dialect = "duckdb"

    def __init__(self, path: str, key_for: Callable[[str], bytes]):
        import duckdb

        from tenantlake.pseudonyms import pseudonym

        self.con = duckdb.connect(path)
        self.con.execute("SET TimeZone = 'UTC'")  # months and days are UTC, as the source's timestamps
        keys: dict[str, bytes] = {}

        def f_pseudonym(tenants: pa.Array, ids: pa.Array) -> pa.Array:
            out = []
            for t, i in zip(tenants.to_pylist(), ids.to_pylist(), strict=True):
                if t is None or i is None:
                    out.append(None)
                    continue
                if t not in keys:
                    keys[t] = key_for(t)
                out.append(pseudonym(keys[t], t, i))
            return pa.array(out, pa.string())

        self.con.create_function("f_pseudonym", f_pseudonym, ["VARCHAR", "VARCHAR"], "VARCHAR", type="arrow",
                                 side_effects=False)
        for schema in ("stage", "core", "mart", "ops", "mart_agency"):
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
        self.con.execute(f"CREATE TABLE IF NOT EXISTS core.current_{name} AS "
                         "SELECT *, CAST(0 AS INTEGER) AS _op_rank, FALSE AS _removed FROM _shape")
        self.con.unregister("_shape")

    def loaded(self, c: Commit) -> bool:
        return bool(self.con.execute(
            "SELECT COUNT(*) FROM ops.load_audit WHERE tenant_id = ? AND entity = ? AND export_id = ?",
            [c.tenant_id, c.entity, c.export_id]).fetchone()[0])

    def load_batch(self, c: Commit, lake) -> LoadResult:
        if c.entity not in ENTITIES:
            raise LoadError(f"{c.entity}: no contract, so no warehouse tables (it stays in the lake)")
        if self.loaded(c):
            return LoadResult(c.tenant_id, c.entity, c.export_id, 0, True)
        tables = [pq.read_table(io.BytesIO(lake.get(f["key"]))) for f in c.files]
        batch = pa.concat_tables(tables) if tables else lake_schema(ENTITIES[c.entity]).empty_table()
        name = entity_table(c.entity)
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"DELETE FROM stage.{name}")
            con.register("_batch", batch)
            con.execute(f"INSERT INTO stage.{name} SELECT * FROM _batch")
            con.unregister("_batch")
            staged, tenants = con.execute(f"SELECT COUNT(*), COUNT(DISTINCT tenant_id) FROM stage.{name}").fetchone()
            other = con.execute(f"SELECT COUNT(*) FROM stage.{name} WHERE tenant_id <> ?", [c.tenant_id]).fetchone()[0]
            if staged != c.rows or other:
                raise LoadError(f"{c.tenant_id} {c.entity} {c.export_id}: staged {staged} rows ({other} of another "
                                f"tenant), the commit marker says {c.rows}")
            for template in ("_entity_history", "_entity_current"):
                con.execute(sql_text("core", template, self.dialect, **merge_context(c.entity)))
            con.execute("INSERT INTO ops.load_audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [c.tenant_id, c.entity, c.export_id, c.kind, c.rows, staged, len(c.files),
                         datetime.now(UTC).replace(tzinfo=None)])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return LoadResult(c.tenant_id, c.entity, c.export_id, staged, False)

    def refresh(self, registry) -> None:
        """Rebuild dimensions, facts and marts from core, in one transaction."""
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("DELETE FROM ops.agency_registry")
            con.executemany("INSERT INTO ops.agency_registry VALUES (?, ?, ?, ?)",
                            [[t.tenant_id, t.display_name, t.aws_account_id, t.region] for t in registry.tenants])
            con.execute("DELETE FROM ops.creditor_aliases")
            rows = [line.split(",") for line in (SQL / "seeds/creditor_aliases.csv").read_text().splitlines()[1:]]
            con.executemany("INSERT INTO ops.creditor_aliases VALUES (?, ?)", rows)
            for schema, tables in (("core", CORE), ("mart", MART)):
                for table in tables:
                    con.execute(f"DROP TABLE IF EXISTS {schema}.{table}")
                    con.execute(sql_text(schema, table, self.dialect))
            for table in TENANT_MARTS:
                # The DuckDB stand-in for row-level security: an agency session sets its tenant.
                con.execute(f"CREATE OR REPLACE VIEW mart_agency.{table} AS SELECT * FROM mart.{table} "
                            "WHERE tenant_id = getvariable('tenantlake_tenant')")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
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


def load_lake(warehouse, lake, registry, tenants: list[str] | None = None) -> dict:
    """Apply every committed batch not yet loaded (oldest export first per table), per tenant in
    isolation, then rebuild core and marts. Returns counts and the failures (tenant: reason)."""
    loaded, skipped, failed = 0, 0, {}
    for tenant in registry.tenants:
        if tenants and tenant.tenant_id not in tenants:
            continue
        try:
            for entity in tenant.tables:
                for c in commits(lake, entity, tenant.tenant_id):
                    r = warehouse.load_batch(c, lake)
                    skipped += r.skipped
                    loaded += not r.skipped
        except Exception as e:  # noqa: BLE001 - one tenant's failure must not stop the others
            failed[tenant.tenant_id] = f"{type(e).__name__}: {e}"
    warehouse.refresh(registry)
    return {"loaded": loaded, "skipped": skipped, "failed": failed}
