"""The embedded default: a DuckDB file running the same Redshift SQL, rendered by sqlglot.

Where Redshift has an external schema over the lake's Glue databases, this warehouse has views
over the lake's current files (register_lake): lake.<entity> over the raw zone's, and
lake_protected_ext.<entity> over the protected zone's, under the same lake_protected.<entity>
views. Row-level security has a stand-in: <schema>_agency.<table> views filtered to the tenant
an agency session sets (as_agency). DuckDB reads the files itself: local paths as they are, files
in S3 through a local copy (`local_copy`, tenantlake.lake.files.LocalCache: this build has no httpfs).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import pyarrow as pa
from sqlglot import exp

from tenantlake.lake.batches import LakeFile
from tenantlake.warehouse import render, security
from tenantlake.warehouse.catalogue import Catalogue, Table
from tenantlake.warehouse.engine import SqlWarehouse

TENANT_VARIABLE = "tenantlake_tenant"


def _nested(t) -> bool:
    return pa.types.is_struct(t) or pa.types.is_list(t) and _nested(t.value_type)


def _missing_fields(want, have, path: str) -> list[tuple[str, object]]:
    """(path, Arrow type) of each struct field `want` has and `have` lacks, outermost first."""
    if pa.types.is_list(want) and pa.types.is_list(have):
        return _missing_fields(want.value_type, have.value_type, f"{path}.element")
    if not (pa.types.is_struct(want) and pa.types.is_struct(have)):
        return []
    present = {f.name: f.type for f in have}
    out = []
    for f in want:
        sub = f'{path}."{f.name}"'
        out += [(sub, f.type)] if f.name not in present else _missing_fields(f.type, present[f.name], sub)
    return out


def local(path: str) -> str:
    return path.removeprefix("file://")


class DuckDBWarehouse(SqlWarehouse):
    dialect = "duckdb"
    placeholder = "?"

    def __init__(self, path: str, catalogue: Catalogue | None = None, local_copy=None,
                 memory_limit: str | None = None, sql_cache: str | None = None):
        import duckdb

        super().__init__(catalogue, sql_cache)
        self.path = path
        self.local_copy = local_copy  # s3:// location (and size) -> a local copy; None: local files only
        self.con = duckdb.connect(path)
        self.con.execute("SET TimeZone = 'UTC'")  # months and days are UTC, as the source's timestamps
        if memory_limit:  # past it, joins, aggregates and sorts spill to <path>.tmp
            try:
                self.con.execute("SET memory_limit = ?", [memory_limit])
            except duckdb.Error:
                self.con.close()
                raise ValueError(f"warehouse memory limit {memory_limit!r}: not a size (e.g. 1GB, 512MB)") from None
        self._depth = 0
        self.ensure()

    # ---- primitives ----------------------------------------------------------------------------

    def _execute(self, sql: str, params: Sequence = ()) -> None:
        self.con.execute(sql, list(params) if params else None)

    def _fetch(self, sql: str, params: Sequence = ()) -> list[tuple]:
        return self.con.execute(sql, list(params) if params else None).fetchall()

    def query(self, sql: str, params: Sequence | None = None) -> list[dict]:
        cur = self.con.execute(sql, list(params) if params else None)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction; a nested use joins the outer one (an erasure's refresh is part of it)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.con.execute("BEGIN TRANSACTION")
        self._depth = 1
        try:
            yield
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        finally:
            self._depth = 0

    def _all_columns(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for schema, table, column in self._fetch(
                "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
                "WHERE database_name = current_database() ORDER BY schema_name, table_name, column_index"):
            out.setdefault(f"{schema}.{table}", []).append(column)
        return out

    def _add_column_statements(self, t: Table, column) -> list[str]:
        add = exp.Alter(this=exp.to_table(t.qualified), kind="TABLE", actions=[exp.ColumnDef(
            this=exp.to_identifier(column.name),
            kind=exp.DataType.build(render.duckdb_type(column.type, column.arrow), dialect="duckdb"))])
        return [self.sql(add), self.sql(render.comment(f"{t.qualified}.{column.name}", column.doc, "COLUMN"))]

    def _type(self, column) -> exp.DataType:
        return exp.DataType.build(render.duckdb_type(column.type, column.arrow), dialect="duckdb")

    def _grow_structs(self) -> list[str]:
        """A field declared inside a map (a struct column) is added to the struct where a table
        lacks it (ALTER TABLE ... ADD COLUMN col.field, inside list elements too): the column
        would otherwise keep its old shape and drop the field on every merge. Redshift holds such
        columns as SUPER, which takes any field."""
        changed = []
        with self._transaction():
            for t in self.catalogue:
                if t.kind in ("view", "external"):
                    continue
                for c in t.columns:
                    if c.arrow is None or not _nested(c.arrow):
                        continue
                    have = self.con.sql(f"SELECT {c.name} FROM {t.qualified} LIMIT 0").to_arrow_table().schema[0].type
                    for path, arrow in _missing_fields(c.arrow, have, c.name):
                        self._execute(f"ALTER TABLE {t.qualified} ADD COLUMN {path} {render.duckdb_type('', arrow)}")
                        changed.append(f"added {t.qualified}.{path}")
                if t.kind == "derived" and any(x.startswith(f"added {t.qualified}.") for x in changed):
                    self._insert_rows("ops.refresh_pending", ("source", "tenant_id", "item_key"),
                                      [("rebuild", None, t.qualified)])  # once per table, however many fields
        return changed

    # ---- views ---------------------------------------------------------------------------------

    def ensure(self) -> list[str]:
        changed = super().ensure()
        changed += self._grow_structs()
        existing = self._all_columns()
        with self._transaction():
            # new, or grown by a promoted column: empty until the run registers the lake's files
            self.register_lake({}, {}, only=[t for t in self.catalogue.of(kind="external")
                                             if existing.get(t.qualified) != t.column_names])
            for t in self.catalogue.of(kind="view"):
                if existing.get(t.qualified) != t.column_names:  # new, or a promoted column to show
                    base = f"lake_protected_ext.{t.name}"
                    self._execute(f"CREATE OR REPLACE VIEW {t.qualified} AS "
                                  f"SELECT {', '.join(t.column_names)} FROM {base}")
                    for c in self._comments(t):
                        self._execute(self.sql(c))
                    changed.append(f"created {t.qualified}")
            for view, table in security.agency_views(self.catalogue):
                if view not in existing or existing[view] != existing.get(table):
                    self._execute(f"CREATE SCHEMA IF NOT EXISTS {view.split('.')[0]}")
                    self._execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {table} "
                                  f"WHERE tenant_id = getvariable('{TENANT_VARIABLE}')")
        return changed

    def register_lake(self, raw: Mapping[str, Sequence[LakeFile]], protected: Mapping[str, Sequence[LakeFile]],
                      only: Sequence[Table] | None = None) -> None:
        """lake.<entity> and lake_protected_ext.<entity> as views over the lake's current files
        (an entity with none: an empty view of the right columns)."""
        tables = only if only is not None else [t for t in self.catalogue.of(kind="external")]
        files_of = {"lake": raw, "lake_protected_ext": protected}
        if self.local_copy is not None and only is None:  # copies of files the lake no longer holds go
            self.local_copy.prune({f.path for files in (*raw.values(), *protected.values()) for f in files})
        registered = {} if only is not None else dict(self._fetch(
            "SELECT schema_name || '.' || view_name, comment FROM duckdb_views() WHERE NOT internal"))
        with self._transaction():
            for t in tables:
                files = list(files_of[t.schema].get(t.entity, ()))
                # the view's comment keeps a digest of its files: a run whose lake did not change
                # them skips the view (binding one over 22,000 files took ~10 s every run)
                digest = "files " + hashlib.sha256("\n".join(sorted(f.path for f in files)).encode()).hexdigest()
                if registered.get(t.qualified) == digest:
                    continue
                select = self._select_files(t, files)
                self._execute(f"CREATE OR REPLACE VIEW {t.qualified} AS {select}")
                self._execute(f"COMMENT ON VIEW {t.qualified} IS '{digest}'")

    def _select_files(self, t: Table, files: list[LakeFile], params: bool = False) -> str:
        """SELECT of the table's columns over Parquet files read together by name (files written
        before a column was promoted give NULL for it); no files: no rows, same columns."""
        if not files:
            cols = ", ".join(f"CAST(NULL AS {render.duckdb_type(c.type, c.arrow)}) AS {c.name}" for c in t.columns)
            return f"SELECT {cols} WHERE FALSE"
        paths = [self._local(f) for f in files]
        listed = "?" if params else "[" + ", ".join(exp.Literal.string(p).sql("duckdb") for p in paths) + "]"
        source = f"read_parquet({listed}, union_by_name = true)"  # paths quoted by the generator
        have = {r[0] for r in self._fetch(f"DESCRIBE SELECT * FROM {source}", [paths] if params else ())}
        cols = ", ".join(c.name if c.name in have else
                         f"CAST(NULL AS {render.duckdb_type(c.type, c.arrow)}) AS {c.name}" for c in t.columns)
        return f"SELECT {cols} FROM {source}"

    def _local(self, f: LakeFile) -> str:
        path = local(f.path)
        if "://" not in path:
            return path
        if self.local_copy is None:
            raise ValueError(f"{path}: a lake in S3 needs a local cache to be read by the embedded default")
        return self.local_copy(f.path, f.bytes)

    def load(self, *args, **kwargs):
        """SqlWarehouse.load, with rows free to move in any order: a load's statements move sets
        (nothing it reads back depends on order), and keeping insertion order holds rows in memory.
        At the memory bound, a 4M-item load took 22 s instead of 30 s (benchmarks/pipeline_end_to_end.py)."""
        self.con.execute("SET preserve_insertion_order = false")
        try:
            return super().load(*args, **kwargs)
        finally:
            self.con.execute("RESET preserve_insertion_order")

    def _stage_files(self, entity: str, files: Sequence[LakeFile]) -> dict[str, int] | None:
        t = self.catalogue[f"stage.{entity.lower()}"]
        if files:
            select = self._select_files(t, list(files), params=True)
            self._execute(f"INSERT INTO {t.qualified} ({', '.join(t.column_names)}) {select}",
                          [[self._local(f) for f in files]])
        return None  # DuckDB keeps no load history: the row counts per batch are the check

    # ---- sessions ------------------------------------------------------------------------------

    def as_agency(self, tenant_id: str) -> None:
        """Make this session an agency analyst's: <schema>_agency.* shows only this tenant."""
        self.con.execute(f"SET VARIABLE {TENANT_VARIABLE} = ?", [tenant_id])

    def close(self) -> None:
        self.con.close()
