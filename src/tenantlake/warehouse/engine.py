"""The warehouse's one algorithm: load, refresh, checks and lifecycle, the same on both backends.

A backend (tenantlake.warehouse.duckdb, .redshift) supplies a connection, a transaction, how files
reach the stage (one COPY over a manifest, or one read_parquet over every file) and its DDL types;
every statement is rendered from sql/ through sqlglot (tenantlake.warehouse.render).

Load, per run and entity, in ONE transaction:
  1. the batches handed in go to stage.load_batches; those already in ops.load_audit are skipped
     (a replay changes nothing);
  2. every file of every new batch of every tenant into stage.<entity> at once;
  3. per-batch checks: rows per (tenant, export) staged equal the batch's; on Redshift, each file's
     rows in the load history (SYS_LOAD_DETAIL) equal the lake's count. A failing batch is deleted
     from stage, left out and reported; the others load. Rows of no batch handed in are dropped;
  4. history appended; what changed recorded for the refresh (ops.refresh_pending) and the event
     spans widened; latest-wins winners chosen and MERGEd into current by (tenant_id, key) (on
     DuckDB as a delete and an insert, sql/load/merge.duckdb.sql, 4x faster there);
  5. each loaded (tenant, entity, export) recorded in ops.load_audit; the lake cursor moved;
     stage emptied. Then COMMIT.

Refresh, in dependency order (read from the queries), in one transaction: a table is recomputed
whole (`full`: small or cross-tenant tables; an empty table; every table with full=True) or only
for the keys the pending changes touch (`keys`, `tenant`): its sources narrowed to those keys, the
keys' rows deleted and inserted again. Tables are refilled, never dropped, so grants and RLS policies stay.
The pending changes are consumed in the same transaction. Nothing pending, nothing to do.
"""

from __future__ import annotations

import csv
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property
from graphlib import TopologicalSorter
from pathlib import Path

from sqlglot import exp

from tenantlake.contracts import ENTITIES
from tenantlake.lake.batches import LakeFile, LoadBatch
from tenantlake.warehouse import render, security
from tenantlake.warehouse.catalogue import Catalogue, Table, entity_key, load_catalogue
from tenantlake.warehouse.interface import BatchOutcome, LoadReport, RefreshReport, TableRefresh
from tenantlake.warehouse.rendered import RenderedSql, fingerprint

log = logging.getLogger(__name__)
REMOVED = "TENANT_REMOVED"
EPOCH_SINCE = "1900-01-01"
LAYERS = ("ops", "core", "mart")  # the schemas a refresh recomputes, in this order
LOAD_HISTORY_NAME_CHARS = 256  # SYS_LOAD_DETAIL.file_name is CHAR(256): a longer S3 path comes back cut


def keys_table(t: Table) -> str:
    return f"stage.{t.schema}_{t.name}_keys"


def before_table(t: Table) -> str:
    return f"stage.{t.schema}_{t.name}_before"


class SqlWarehouse:
    """The algorithm over a backend's primitives; see the module docstring."""

    dialect: str = render.READ
    placeholder: str = "%s"

    @property
    def text_parameter(self) -> str:
        """A text parameter in a select list, typed: redshift_connector sends a str as UNKNOWN, which
        Redshift will not compare for DISTINCT (ops.refresh_pending.source is VARCHAR(64))."""
        return f"CAST({self.placeholder} AS VARCHAR(64))"

    def __init__(self, catalogue: Catalogue | None = None, sql_cache: str | None = None):
        """`sql_cache`: a folder keeping rendered statements for the next process (rendered.py)."""
        self.catalogue = catalogue or load_catalogue()
        name = None
        if sql_cache is not None:
            code = [Path(render.__file__), Path(__file__), Path(sys.modules[type(self).__module__].__file__)]
            name = f"{self.dialect}-{fingerprint(self.dialect, self.catalogue, code)}"
        self._rendered = RenderedSql(sql_cache, name)

    # ---- primitives a backend provides ---------------------------------------------------------

    def _execute(self, sql: str, params: Sequence = ()) -> None:
        raise NotImplementedError

    def _fetch(self, sql: str, params: Sequence = ()) -> list[tuple]:
        raise NotImplementedError

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        raise NotImplementedError
        yield

    def _stage_files(self, entity: str, files: Sequence[LakeFile]) -> dict[str, int] | None:
        """Every file into stage.<entity>; per file, the rows the database's load history says
        it took (None where the backend keeps no such history)."""
        raise NotImplementedError

    def _all_columns(self) -> dict[str, list[str]]:
        """Every table's and view's columns now, by schema.table (one catalog query)."""
        raise NotImplementedError

    def _create_statements(self, t: Table) -> list[str]:
        """The table's (or view's) CREATE in this dialect, and its comments."""
        create = render.file_statements(t.source)[0] if t.kind == "table" and t.source is not None \
            else render.create_table(t, self.dialect)
        out = [self.sql(create)]
        if security.commented(t) and t.qualified in self.catalogue.tables:  # not the refresh's scratch
            out += [self.sql(c) for c in self._comments(t)]
        return out

    def _comments(self, t: Table) -> list[exp.Expression]:
        """COMMENT ON the table and its columns, as this dialect takes them (tenantlake.warehouse.security)."""
        return security.comments(Catalogue(self.catalogue.root, self.catalogue.security, {t.qualified: t}),
                                 self.dialect)

    def _add_column_statements(self, t: Table, column) -> list[str]:
        raise NotImplementedError

    def register_lake(self, raw: Mapping[str, Sequence[LakeFile]], protected: Mapping[str, Sequence[LakeFile]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # ---- helpers -------------------------------------------------------------------------------

    def sql(self, expression: exp.Expression) -> str:
        return render.sql(expression, self.dialect)

    def fetch(self, statement: exp.Expression | str, params: Sequence = ()) -> list[tuple]:
        return self._fetch(statement if isinstance(statement, str) else self.sql(statement), params)

    def query(self, sql: str, params: Sequence | None = None) -> list[dict]:
        raise NotImplementedError

    def _insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
        """Many rows by bound parameters, a few hundred per statement (one round trip each)."""
        if not rows:
            return
        one = "(" + ", ".join([self.placeholder] * len(columns)) + ")"
        for i in range(0, len(rows), 500):
            chunk = rows[i:i + 500]
            self._execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join([one] * len(chunk)),
                          [v for row in chunk for v in row])

    def _template(self, name: str, entity: str, folder: str = "load") -> list[str]:
        """A template of sql/load (or sql/checks) rendered for an entity (cached: the same few
        statements run for every load)."""
        key = (folder, name, entity)
        out = self._rendered.get(key)
        if out is None:
            contract = ENTITIES[entity]
            e = entity.lower()
            stage = self.catalogue[f"stage.{e}"]
            columns = stage.column_names
            tables = {"stage.entity": f"stage.{e}", "stage.entity_merge": f"stage.{e}_merge",
                      "core.history_entity": f"core.history_{e}", "core.current_entity": f"core.current_{e}",
                      "lake.entity": f"lake.{e}", "lake_protected.entity": f"lake_protected.{e}"}
            key_column = entity_key(contract)
            renames = {"item_key": key_column}
            nulls = [] if "consumer_key" in columns else ["consumer_key"]
            out = []
            for s in render.file_statements(render.for_dialect(self.catalogue.root / folder / f"{name}.sql",
                                                               self.dialect)):
                s = render.expand(s, columns)
                s = render.rename(s, tables, renames, nulls)
                s = render.fill(s, entity=entity, span=f"span:{entity}")
                out.append(self.sql(s))
            self._rendered.put(key, out)
        return out

    @cached_property
    def derived(self) -> list[Table]:
        """Derived tables in dependency order, read from their queries and affected-key queries;
        among tables ready at the same time, ops and core before marts, then file order."""
        tables = {t.qualified: t for t in self.catalogue if t.kind == "derived" and t.schema in LAYERS}
        graph = TopologicalSorter()
        for name, t in tables.items():
            query, _ = render.query_of(t.source, render.READ)
            needs = render.references(query)
            if t.refresh.affected:
                needs |= render.references(render.parse_one(t.refresh.affected, str(t.metadata)))
            graph.add(name, *sorted(n for n in needs if n in tables and n != name))
        position = {name: (LAYERS.index(t.schema), i) for i, (name, t) in enumerate(tables.items())}
        graph.prepare()
        order = []
        while graph.is_active():
            ready = sorted(graph.get_ready(), key=position.__getitem__)
            order += ready
            graph.done(*ready)
        return [tables[n] for n in order]

    # ---- ensure --------------------------------------------------------------------------------

    def helper_tables(self) -> list[Table]:
        """Scratch tables the refresh needs: affected keys per table, a full table's previous rows."""
        from dataclasses import replace

        out = []
        for t in self.derived:
            r = t.refresh
            if r.scope in ("keys", "tenant"):
                cols = [t.column(k) for k in r.key]
                if r.since:
                    cols.append(replace(t.column(r.since), name="since", nullable=True))
                schema, name = keys_table(t).split(".")
                out.append(replace(t, schema=schema, name=name, kind="table", columns=tuple(cols), source=None,
                                   distribution=None, sort=(), tenant_scoped=False, readers=(), reconcile=()))
            if r.capture:
                schema, name = before_table(t).split(".")
                out.append(replace(t, schema=schema, name=name, kind="table", source=None, distribution=None,
                                   sort=(), tenant_scoped=False, readers=(), reconcile=()))
        return out

    def ensure(self) -> list[str]:
        """Create what is missing; add the columns the contracts gained (entity tables: empty for
        rows loaded before, until their tenant is reloaded; derived tables: refilled at the next
        refresh). Idempotent."""
        changed, grown = [], []
        existing = self._all_columns()
        with self._transaction():
            for schema in self.catalogue.schemas.values():
                if not schema.glue_zone or self.dialect != render.READ:
                    self._execute(f"CREATE SCHEMA IF NOT EXISTS {schema.name}")
            for t in [*self.catalogue, *self.helper_tables()]:
                if t.kind in ("view", "external"):
                    continue
                have = existing.get(t.qualified)
                if have is None:
                    for s in self._create_statements(t):
                        self._execute(s)
                    changed.append(f"created {t.qualified}")
                elif missing := [c for c in t.columns if c.name not in have]:
                    grown.append((t, missing))
        for t, missing in grown:
            changed += self._add_columns(t, missing)
        return changed

    def _add_columns(self, t: Table, missing) -> list[str]:
        """A promoted attribute: ALTER TABLE ... ADD COLUMN (one per statement, as Redshift allows);
        rows already loaded get its value by reloading their tenant once the lake's promotion has
        filled the protected table (`_extra` never leaves raw); a stage table is scratch and simply
        recreated (COPY maps a Parquet file's columns by position)."""
        out = []
        with self._transaction():
            if t.schema == "stage" and t.kind == "entity":
                self._execute(f"DROP TABLE {t.qualified}")
                for s in self._create_statements(t):
                    self._execute(s)
                return [f"recreated {t.qualified}"]
            for c in missing:
                for s in self._add_column_statements(t, c):
                    self._execute(s)
                out.append(f"added {t.qualified}.{c.name}")
            if t.kind == "derived":
                self._insert_rows("ops.refresh_pending", ("source", "tenant_id", "item_key"),
                                  [("rebuild", None, t.qualified)])
        return out

    def _type(self, column) -> exp.DataType:
        return exp.DataType.build(column.type, dialect=render.READ)

    # ---- load ----------------------------------------------------------------------------------

    def load(self, batches: Iterable[LoadBatch], *, replace_tenants: Collection[str] = (),
             cursors: Mapping[str, int] | None = None) -> LoadReport:
        """See Warehouse.load; `cursors`: per entity, the lake snapshot the batches were read up to,
        recorded in the entity's transaction (ops.load_cursor) so the next run reads after it."""
        cursors = cursors or {}
        report = LoadReport()
        by_entity: dict[str, dict[tuple, LoadBatch]] = defaultdict(dict)
        for b in batches:
            if b.entity not in ENTITIES:
                report.outcomes.append(BatchOutcome(b.tenant_id, b.entity, b.export_id, "failed", 0,
                                                    "no contract for the entity: it stays in the lake"))
                continue
            by_entity[b.entity].setdefault((b.tenant_id, b.export_id), b)  # handed twice: once
        for entity in ENTITIES:
            if entity not in by_entity and not replace_tenants and entity not in cursors:
                continue
            started = time.perf_counter()
            todo = list(by_entity.get(entity, {}).values())
            try:
                with self._transaction():
                    outcomes, problems = self._load_entity(entity, todo, replace_tenants, cursors.get(entity))
            except Exception as e:  # noqa: BLE001 - one entity's failure is reported, the others load
                log.exception("loading %s failed; its transaction rolled back", entity)
                report.problems.append(f"{entity}: {type(e).__name__}: {e}"[:500])
                outcomes = [BatchOutcome(b.tenant_id, entity, b.export_id, "failed", 0,
                                         f"the entity's load failed: {type(e).__name__}") for b in todo]
                problems = []
            report.outcomes += outcomes
            report.problems += problems
            report.seconds[entity] = time.perf_counter() - started
        return report

    def _load_entity(self, entity: str, batches: list[LoadBatch], replace_tenants: Collection[str],
                     cursor: int | None = None) -> tuple[list[BatchOutcome], list[str]]:
        e = entity.lower()
        stage, merge = f"stage.{e}", f"stage.{e}_merge"
        for table in (stage, merge, "stage.load_batches", "stage.spans"):
            self._execute(f"DELETE FROM {table}")
        if replace_tenants:
            self._forget_tenants(entity, sorted(replace_tenants))
        self._insert_rows("stage.load_batches",
                          ("tenant_id", "entity", "export_id", "kind", "rows_expected", "files", "snapshot_id"),
                          [(b.tenant_id, entity, b.export_id, b.kind, b.rows, len(b.files), b.snapshot_id)
                           for b in batches])
        done = {(t, x) for t, x in self._fetch(
            "SELECT b.tenant_id, b.export_id FROM stage.load_batches AS b JOIN ops.load_audit AS a "
            "ON a.tenant_id = b.tenant_id AND a.entity = b.entity AND a.export_id = b.export_id")}
        outcomes = [BatchOutcome(b.tenant_id, entity, b.export_id, "skipped") for b in batches
                    if (b.tenant_id, b.export_id) in done]
        new = [b for b in batches if (b.tenant_id, b.export_id) not in done]
        problems: list[str] = []
        if new:
            files = list({f.path: f for b in new for f in b.files}.values())  # a compacted file may hold several
            history = self._stage_files(entity, files) if files else {}
            staged = {(t, x): n for t, x, n in self._fetch(
                f"SELECT tenant_id, _export_id, COUNT(*) FROM {stage} GROUP BY tenant_id, _export_id")}
            accepted, failed = [], []
            for b in new:
                why = self._batch_problem(b, staged.get((b.tenant_id, b.export_id), 0), history)
                (failed if why else accepted).append((b, why))
            keep = {(b.tenant_id, b.export_id) for b, _ in accepted}
            stray = {k: n for k, n in staged.items() if k not in keep}
            unknown = {k: n for k, n in stray.items() if k not in done and k not in {(b.tenant_id, b.export_id)
                                                                                      for b, _ in failed}}
            if unknown:
                problems += [f"{entity}: {n} rows of {t} export {x} came with no batch handed in; left out"
                             for (t, x), n in sorted(unknown.items())]
            if stray:
                self._drop_staged(stage, [k for k in stray])
            outcomes += [BatchOutcome(b.tenant_id, entity, b.export_id, "failed", 0, why) for b, why in failed]
            if accepted:
                self._apply(entity, [b for b, _ in accepted])
                outcomes += [BatchOutcome(b.tenant_id, entity, b.export_id, "loaded",
                                          staged[(b.tenant_id, b.export_id)]) for b, _ in accepted]
                now = datetime.now(UTC).replace(tzinfo=None)
                self._insert_rows("ops.load_audit", ("tenant_id", "entity", "export_id", "kind", "rows_expected",
                                                     "rows_loaded", "files", "snapshot_id", "loaded_at"),
                                  [(b.tenant_id, entity, b.export_id, b.kind, b.rows,
                                    staged[(b.tenant_id, b.export_id)], len(b.files), b.snapshot_id, now)
                                   for b, _ in accepted])
        if cursor is not None:
            self._execute(f"DELETE FROM ops.load_cursor WHERE entity = {self.placeholder}", [entity])
            self._insert_rows("ops.load_cursor", ("entity", "snapshot_id", "loaded_at"),
                              [(entity, cursor, datetime.now(UTC).replace(tzinfo=None))])
        for table in (stage, merge, "stage.load_batches"):
            self._execute(f"DELETE FROM {table}")
        return outcomes, problems

    @staticmethod
    def _batch_problem(b: LoadBatch, staged: int, history: dict[str, int] | None) -> str:
        """Why a batch must be left out, or '' when it may load."""
        if b.rows >= 0 and staged != b.rows:
            return f"staged {staged} rows, the lake published {b.rows}"
        if history is not None:
            for f in b.files:
                took = history.get(f.path[:LOAD_HISTORY_NAME_CHARS])
                if took is None:
                    return f"{f.path} is missing from the load history (SYS_LOAD_DETAIL)"
                if took != f.rows:
                    return f"the load history shows {took} rows of {f.path}, the lake says {f.rows}"
        return ""

    def _drop_staged(self, stage: str, keys: list[tuple[str, str]]) -> None:
        self._execute("DELETE FROM stage.load_batches")
        self._insert_rows("stage.load_batches", ("tenant_id", "entity", "export_id", "kind", "rows_expected", "files"),
                          [(t, "-", x, "-", 0, 0) for t, x in keys])
        self._execute(f"DELETE FROM {stage} USING stage.load_batches AS b "
                      f"WHERE {stage}.tenant_id = b.tenant_id AND {stage}._export_id = b.export_id")

    def _apply(self, entity: str, batches: list[LoadBatch]) -> None:
        """History, pending changes, spans, winners and the MERGE, for what is left in stage."""
        for name in ("history", "pending", "spans", "winners", "merge"):
            for statement in self._template(name, entity):
                self._execute(statement)

    def _forget_tenants(self, entity: str, tenants: list[str]) -> None:
        """A reload: the tenants' rows of the entity go (their keys recorded for the refresh), and so
        do their audit rows, so the batches handed in load again."""
        e = entity.lower()
        key = entity_key(ENTITIES[entity])
        consumer = "consumer_key" if "consumer_key" in self.catalogue[f"core.current_{e}"].column_names else "NULL"
        marks = ", ".join([self.placeholder] * len(tenants))
        self._execute(f"INSERT INTO ops.refresh_pending (source, tenant_id, item_key, consumer_key) "
                      f"SELECT DISTINCT {self.text_parameter}, tenant_id, {key}, {consumer} FROM core.history_{e} "
                      f"WHERE tenant_id IN ({marks})", [entity, *tenants])
        for table in (f"core.history_{e}", f"core.current_{e}"):
            self._execute(f"DELETE FROM {table} WHERE tenant_id IN ({marks})", tenants)
        self._execute(f"DELETE FROM ops.load_audit WHERE entity = {self.placeholder} AND tenant_id IN ({marks})",
                      [entity, *tenants])
        self._execute(f"DELETE FROM ops.event_span WHERE entity = {self.placeholder} AND tenant_id IN ({marks})",
                      [entity, *tenants])

    # ---- refresh -------------------------------------------------------------------------------

    def refresh(self, registry=None, *, full: bool = False, schemas: Sequence[str] | None = None,
                reference: Mapping[str, tuple[Sequence[str], list[tuple]]] | None = None) -> RefreshReport:
        """See Warehouse.refresh; `reference`: more ops tables to refill whole first, as
        {"ops.<name>": (columns, rows)} (tenantlake.ops.tables.ops_rows)."""
        started = time.perf_counter()
        with self._transaction():
            report = self._refresh(registry, full=full, schemas=schemas, reference=reference)
        report.seconds = time.perf_counter() - started
        return report

    def _refresh(self, registry=None, *, full: bool = False, schemas: Sequence[str] | None = None,
                 reference: Mapping[str, tuple[Sequence[str], list[tuple]]] | None = None) -> RefreshReport:
        layers = tuple(schemas or LAYERS)
        report = RefreshReport()
        changed_reference = self._refill_reference(registry, reference or {})
        pending = self._fetch("SELECT COUNT(*) FROM ops.refresh_pending")[0][0]
        if not (full or pending or changed_reference or self._empty_once()):
            return report
        rebuild = {r[0] for r in self._fetch("SELECT item_key FROM ops.refresh_pending WHERE source = 'rebuild'")}
        for t in self.derived:
            if t.schema not in layers:
                continue
            started = time.perf_counter()
            mode, keys = self._refresh_table(t, full or t.qualified in rebuild)
            report.tables.append(TableRefresh(t.qualified, mode, keys, time.perf_counter() - started))
        if layers[-1] == LAYERS[-1]:  # the last layer carried the changes through: they are done
            self._execute("DELETE FROM ops.refresh_pending")
        return report

    def _empty_once(self) -> bool:
        return any(t.refresh.scope == "once" and not self._fetch(f"SELECT 1 FROM {t.qualified} LIMIT 1")
                   for t in self.derived)

    def _statements(self, t: Table, mode: str) -> list[str]:
        key = ("refresh", t.qualified, mode)
        out = self._rendered.get(key)
        if out is None:
            query, after = render.query_of(t.source, self.dialect)
            cols = t.column_names
            r = t.refresh
            if mode == "keys":
                keys = keys_table(t)
                wanted = list(r.key) + (["since"] if r.since else [])
                affected = render.parse_one(r.affected, str(t.metadata))
                fill = render.insert_all(keys, wanted, affected)
                narrowed = render.narrow(query, r.narrow, keys)
                out = [f"DELETE FROM {keys}", self.sql(fill)]
                out += [self.sql(render.delete_within(t.qualified, keys, r.key, r.since)),
                        self.sql(render.within(t.qualified, cols, narrowed, keys, r.key, r.since))]
            else:
                out = [f"DELETE FROM {t.qualified}", self.sql(render.insert_all(t.qualified, cols, query))]
            out = self._rendered.put(key, out + [self.sql(s) for s in after])
        return out

    def _refresh_table(self, t: Table, full: bool) -> tuple[str, int]:
        r = t.refresh
        if r.scope in ("once", "keys", "tenant") and not full:
            # An empty table is filled whole: narrowing to keys would cover every row at twice the
            # statements (a first load; a table added later). "once" tables are filled only then.
            empty = not self._fetch(f"SELECT 1 FROM {t.qualified} LIMIT 1")
            if r.scope == "once" and not empty:
                return "skipped", 0
            full = empty
        if r.scope in ("keys", "tenant") and not full:
            empty_keys, fill_keys, *work = self._statements(t, "keys")
            self._execute(empty_keys)
            self._execute(fill_keys)
            n = self._fetch(f"SELECT COUNT(*) FROM {keys_table(t)}")[0][0]
            if not n:
                return "skipped", 0
            for s in work:
                self._execute(s)
            self._execute(f"DELETE FROM {keys_table(t)}")
            return "keys", n
        if r.capture:
            before = before_table(t)
            cols = ", ".join(t.column_names)
            self._execute(f"DELETE FROM {before}")
            self._execute(f"INSERT INTO {before} ({cols}) SELECT {cols} FROM {t.qualified}")
        for s in self._statements(t, "full"):
            self._execute(s)
        if r.capture:
            self._capture(t)
        return "full", 0

    def _capture(self, t: Table) -> None:
        """Which grain keys of a recomputed table changed, recorded as pending for the tables that
        carry them (a spelling that changed creditor; an agency renamed)."""
        before, cols = before_table(t), ", ".join(t.column_names)
        item = next((g for g in t.grain if g != "tenant_id"), "tenant_id")
        tenant = "tenant_id" if "tenant_id" in t.grain else "NULL"
        self._execute(
            f"INSERT INTO ops.refresh_pending (source, tenant_id, item_key) "
            f"SELECT DISTINCT {self.text_parameter}, {tenant}, {item} FROM ("
            f"(SELECT {cols} FROM {before} EXCEPT SELECT {cols} FROM {t.qualified}) UNION ALL "
            f"(SELECT {cols} FROM {t.qualified} EXCEPT SELECT {cols} FROM {before})) AS d", [t.qualified])
        self._execute(f"DELETE FROM {before}")

    def _refill_reference(self, registry, reference: Mapping[str, tuple[Sequence[str], list[tuple]]]) -> bool:
        """ops.agency_registry from the registry (less tenants removed from the warehouse), each
        seed in sql/seeds into its ops table, and the reference tables handed in; rewritten only
        when they differ. Whether any did."""
        wanted: dict[str, tuple[tuple[str, ...], list[tuple]]] = {}
        for table, (columns, rows) in reference.items():
            if self.catalogue[table].schema != "ops":  # a KeyError names a table the catalogue lacks
                raise ValueError(f"{table}: only ops tables are refilled from outside")
            wanted[table] = (tuple(columns), [tuple(r) for r in rows])
        if registry is not None:
            removed = {r[0] for r in self._fetch(f"SELECT tenant_id FROM ops.load_audit WHERE kind = '{REMOVED}'")}
            columns = ("tenant_id", "agency_name", "aws_account_id", "region")
            # A tenant whose entry is invalid now (a typo) keeps the row it had: its data is still
            # loaded, and its agency must not drop out of dim_agency and every mart meanwhile.
            broken = set(registry.invalid_by_id) - {t.tenant_id for t in registry.tenants}
            kept = [tuple(r) for r in self._fetch(f"SELECT {', '.join(columns)} FROM ops.agency_registry")
                    if r[0] in broken] if broken else []
            wanted["ops.agency_registry"] = (columns, [(t.tenant_id, t.display_name, t.aws_account_id, t.region)
                                                       for t in registry.tenants if t.tenant_id not in removed]
                                             + [r for r in kept if r[0] not in removed])
        for seed in sorted((self.catalogue.root / "seeds").glob("*.csv")):
            with seed.open(newline="") as f:
                rows = list(csv.reader(f))
            wanted[f"ops.{seed.stem}"] = (tuple(rows[0]), [tuple(r) for r in rows[1:] if r])
        changed = set()
        for table, (columns, rows) in wanted.items():
            have = self._fetch(f"SELECT {', '.join(columns)} FROM {table}")
            if sorted(map(repr, map(tuple, have))) != sorted(map(repr, rows)):
                self._execute(f"DELETE FROM {table}")
                self._insert_rows(table, columns, rows)
                changed.add(table)
        return bool(changed & self._read_by_derived)

    @cached_property
    def _read_by_derived(self) -> set[str]:
        """The tables some derived table reads (a change to another reference table needs no refresh)."""
        return {r for t in self.derived for r in render.references(render.query_of(t.source, render.READ)[0])}

    # ---- checks, lifecycle ---------------------------------------------------------------------

    def check(self, tenants: Collection[str] | None = None) -> list[str]:
        from tenantlake.warehouse.checks import post_load_checks

        return post_load_checks(self, tenants)

    def reload_tenant(self, tenant_id: str, batches: Iterable[LoadBatch], registry=None) -> LoadReport:
        mine = [b for b in batches if b.tenant_id == tenant_id]
        report = self.load(mine, replace_tenants=[tenant_id])
        self.refresh(registry)
        return report

    def erase_consumer(self, tenant_id: str, consumer_key: str,
                       item_ids: Mapping[str, Collection[str]] | None = None) -> dict[str, int]:
        """In one transaction: every row of the consumer (their pseudonym, and the given ids of their
        items per entity) out of stage, history and current, what it touched refreshed."""
        item_ids = item_ids or {}
        removed: dict[str, int] = {}
        with self._transaction():
            for entity in ENTITIES:
                e = entity.lower()
                key = entity_key(ENTITIES[entity])
                has_consumer = "consumer_key" in self.catalogue[f"core.current_{e}"].column_names
                ids = sorted(set(item_ids.get(entity, ())))
                if not has_consumer and not ids:
                    continue
                where, params = self._erase_where(key, has_consumer, consumer_key, ids)
                consumer = "consumer_key" if has_consumer else "NULL"
                self._execute(f"INSERT INTO ops.refresh_pending (source, tenant_id, item_key, consumer_key) "
                              f"SELECT DISTINCT {self.text_parameter}, tenant_id, {key}, {consumer} "
                              f"FROM core.history_{e} WHERE tenant_id = {self.placeholder} AND ({where})",
                              [entity, tenant_id, *params])
                for table in (f"stage.{e}", f"stage.{e}_merge", f"core.history_{e}", f"core.current_{e}"):
                    n = self._fetch(f"SELECT COUNT(*) FROM {table} WHERE tenant_id = {self.placeholder} AND ({where})",
                                    [tenant_id, *params])[0][0]
                    if n:
                        self._execute(f"DELETE FROM {table} WHERE tenant_id = {self.placeholder} AND ({where})",
                                      [tenant_id, *params])
                        removed[table] = removed.get(table, 0) + n
            self._refresh()
        return removed

    def _erase_where(self, key: str, has_consumer: bool, consumer_key: str, ids: list[str]) -> tuple[str, list]:
        parts, params = [], []
        if has_consumer:
            parts.append(f"consumer_key = {self.placeholder}")
            params.append(consumer_key)
        if ids:
            parts.append(f"{key} IN ({', '.join([self.placeholder] * len(ids))})")
            params += ids
        return " OR ".join(parts), params

    def remove_tenant(self, tenant_id: str) -> dict[str, int]:
        """In one transaction: the tenant's rows out of every tenant-scoped table of the warehouse,
        the cross-tenant tables recomputed, and one load-audit row saying it was removed."""
        removed: dict[str, int] = {}
        with self._transaction():
            audit = self._fetch("SELECT COUNT(*), SUM(rows_loaded) FROM ops.load_audit WHERE tenant_id = "
                                f"{self.placeholder} AND kind <> '{REMOVED}'", [tenant_id])[0]
            for t in [*self.catalogue, *self.helper_tables()]:
                if t.kind in ("view", "external") or "tenant_id" not in t.column_names:
                    continue
                n = self._fetch(f"SELECT COUNT(*) FROM {t.qualified} WHERE tenant_id = {self.placeholder}",
                                [tenant_id])[0][0]
                if n:
                    self._execute(f"DELETE FROM {t.qualified} WHERE tenant_id = {self.placeholder}", [tenant_id])
                    removed[t.qualified] = n
            self._insert_rows("ops.load_audit", ("tenant_id", "entity", "export_id", "kind", "rows_expected",
                                                 "rows_loaded", "files", "loaded_at"),
                              [(tenant_id, "*", "removed", REMOVED, int(audit[0] or 0), int(audit[1] or 0), 0,
                                datetime.now(UTC).replace(tzinfo=None))])
            for t in self.derived:  # what spans tenants is recomputed without this one
                if t.refresh.scope == "full":
                    self._refresh_table(t, full=True)
            # ... and what that changed (a creditor spelled only by this tenant, as a pending row
            # with no tenant) is carried through now, not left pending with its spellings
            if self._fetch("SELECT COUNT(*) FROM ops.refresh_pending")[0][0]:
                self._refresh()
        return removed
