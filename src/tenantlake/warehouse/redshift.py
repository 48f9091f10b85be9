"""Production: Redshift, reading the lake's Iceberg tables through Glue and loading by COPY.

Per run and entity, one COPY over a manifest listing every new file of every tenant
(FORMAT PARQUET SERIALIZETOJSON: nested columns and `_extra` load into SUPER, which holds a 400 KB
item whole where VARCHAR stops at 65,535 bytes), then the shared algorithm in the same
transaction (tenantlake.warehouse.engine). Each batch is checked against the load history too:
SYS_LOAD_DETAIL records, per file of the COPY, the rows it scanned; a file missing or short
fails its batch (STL_LOAD_COMMITS, its older twin, holds nothing on Serverless or for a COPY run on
a concurrency-scaling cluster: every batch would fail there). Both keep 256 characters of a name.
COPY maps a Parquet file's columns by position, so stage tables are created in
the protected files' column order and recreated, never altered, when a column is promoted.

The lake is two external schemas over the Glue databases of the lake's raw and protected zones
(`<namespace>_raw`, `<namespace>_protected`): Iceberg tables need no partitions registered, so
register_lake has nothing to do. Analysts read lake_protected.<entity>, late-binding views over
the protected zone with the tenant policy attached (external tables take no policy).

`connect` returns a DB-API connection (redshift_connector, or the amazon provider's
RedshiftSQLHook(...).get_conn); `manifests` is the store COPY manifests are written to (the lake
bucket, under _manifests/).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import orjson
from sqlglot import exp

from tenantlake.lake.batches import LakeFile
from tenantlake.warehouse import render, security
from tenantlake.warehouse.catalogue import Catalogue, Table
from tenantlake.warehouse.engine import SqlWarehouse
from tenantlake.warehouse.security import ROLE_ARN, Statement, checked

S3_URL = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9!_.*()/=-]*)?$")  # never a quote


class RedshiftWarehouse(SqlWarehouse):
    dialect = "redshift"
    placeholder = "%s"

    def __init__(self, connect: Callable, lake_url: str, iam_role: str, manifests=None,
                 catalogue: Catalogue | None = None, sql_cache: str | None = None):
        super().__init__(catalogue, sql_cache)
        self.connect, self.lake_url, self.iam_role, self.manifests = connect, lake_url.rstrip("/"), iam_role, manifests
        checked(self.lake_url + "/", S3_URL, "lake URL")
        checked(iam_role, ROLE_ARN, "IAM role ARN")
        self._cursor = None

    # ---- primitives ----------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One connection and transaction; a nested use joins the outer one."""
        if self._cursor is not None:
            yield
            return
        conn = self.connect()
        try:
            self._cursor = conn.cursor()
            yield
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            self._cursor = None
            conn.close()

    def _execute(self, sql: str, params: Sequence = ()) -> None:
        with self._transaction():
            self._cursor.execute(sql, tuple(params) if params else None)

    def _fetch(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._transaction():
            self._cursor.execute(sql, tuple(params) if params else None)
            return [tuple(r) for r in self._cursor.fetchall()]

    def query(self, sql: str, params: Sequence | None = None) -> list[dict]:
        with self._transaction():
            self._cursor.execute(sql, tuple(params) if params else None)
            names = [d[0] for d in self._cursor.description]
            return [dict(zip(names, row, strict=True)) for row in self._cursor.fetchall()]

    def _all_columns(self) -> dict[str, list[str]]:
        schemas = [s.name for s in self.catalogue.schemas.values() if not s.glue_zone]
        out: dict[str, list[str]] = {}
        marks = ", ".join([self.placeholder] * len(schemas))
        for schema, table, column in self._fetch(
                "SELECT table_schema, table_name, column_name FROM information_schema.columns "
                f"WHERE table_schema IN ({marks}) ORDER BY table_schema, table_name, ordinal_position", schemas):
            out.setdefault(f"{schema}.{table}", []).append(column)
        return out

    # ---- statements (pure: asserted as text in tests) ------------------------------------------

    def _add_column_statements(self, t: Table, column) -> list[str]:
        """One column per statement (Redshift adds one at a time; never a DISTKEY or SORTKEY)."""
        add = exp.Alter(this=exp.to_table(t.qualified), kind="TABLE", actions=[exp.ColumnDef(
            this=exp.to_identifier(column.name), kind=exp.DataType.build(column.type, dialect=self.dialect))])
        return [self.sql(add), self.sql(render.comment(f"{t.qualified}.{column.name}", column.doc, "COLUMN"))]

    def manifest(self, files: Sequence[LakeFile]) -> dict:
        return {"entries": [{"url": checked(f.path, S3_URL, "lake file URL"), "mandatory": True,
                             "meta": {"content_length": f.bytes}} for f in files]}

    def manifest_key(self, entity: str, files: Sequence[LakeFile]) -> str:
        """Named by its content: a rerun of the same load writes the same manifest."""
        digest = hashlib.sha256("\n".join(sorted(f.path for f in files)).encode()).hexdigest()[:24]
        return f"_manifests/{entity}/{digest}.json"

    def copy_statement(self, entity: str, manifest_url: str) -> str:
        url = checked(manifest_url, S3_URL, "manifest URL")
        copy = render.parse_one(f"COPY stage.{entity.lower()} FROM '{url}' IAM_ROLE '{self.iam_role}' "
                                "FORMAT AS PARQUET SERIALIZETOJSON MANIFEST")
        return self.sql(copy)

    LOAD_HISTORY = ("SELECT TRIM(file_name), SUM(lines_scanned) FROM sys_load_detail "
                    "WHERE query_id = pg_last_copy_id() GROUP BY TRIM(file_name)")

    def _stage_files(self, entity: str, files: Sequence[LakeFile]) -> dict[str, int] | None:
        key = self.manifest_key(entity, files)
        self.manifests.put(key, orjson.dumps(self.manifest(files)))
        self._execute(self.copy_statement(entity, f"{self.lake_url}/{key}"))
        return {name: int(n) for name, n in self._fetch(self.LOAD_HISTORY)}

    def register_lake(self, raw: Mapping[str, Sequence[LakeFile]], protected: Mapping[str, Sequence[LakeFile]]) -> None:
        """Nothing to register: Spectrum reads each Iceberg table's current snapshot through Glue."""

    def close(self) -> None:
        pass

    # ---- a new database ------------------------------------------------------------------------

    def setup_statements(self, glue_namespace: str, spectrum_role: str) -> list[str]:
        """Everything a new Redshift database needs, in order: roles, schemas, the external schemas
        over the lake's Glue databases (<namespace>_raw, <namespace>_protected), every table with
        its comments, the protected views, the tenant policy attached to every tenant-scoped
        relation, and the grants. Run once, by an administrator; loads never run it."""
        return [security.text(s) for s in self.setup_script(glue_namespace, spectrum_role)]

    def setup_script(self, glue_namespace: str, spectrum_role: str) -> list[Statement]:
        cat = self.catalogue
        out: list[Statement] = security.roles(cat)
        for s in cat.security.schemas:
            if s.glue_zone:
                out.append(security.CreateExternalSchema(s.name, f"{glue_namespace}_{s.glue_zone}", spectrum_role))
            else:
                out.append(render.parse_one(f"CREATE SCHEMA IF NOT EXISTS {s.name}"))
        for t in [*cat, *self.helper_tables()]:
            if t.kind in ("view", "external"):
                continue
            out.append(render.file_statements(t.source)[0] if t.kind == "table" and t.source is not None
                       else render.create_table(t, self.dialect))
        out += [self.view(t) for t in cat.of(kind="view")]
        out += security.comments(cat)
        out += security.policy(cat)
        out += security.grants(cat)
        return out

    def view(self, t: Table) -> exp.Expression:
        """A protected view: late-binding (required over an external table), its owner's access to
        the external schema, the analyst's to the view only."""
        return render.parse_one(f"CREATE OR REPLACE VIEW {t.qualified} AS SELECT {', '.join(t.column_names)} "
                                f"FROM lake_protected_ext.{t.name} WITH NO SCHEMA BINDING")


def redshift_setup_script(args) -> str:
    """`tenantlake redshift-setup`: the script for a new database (args: lake, copy_role,
    glue_database_prefix, spectrum_role), statements separated for psql."""
    wh = RedshiftWarehouse(lambda: None, args.lake, args.copy_role)
    return ";\n\n".join(wh.setup_statements(args.glue_database_prefix, args.spectrum_role)) + ";\n"
