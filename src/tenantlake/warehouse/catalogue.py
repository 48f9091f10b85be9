"""The table catalogue, read from sql/ itself: every warehouse table, what it is and who reads it.

Each table has one metadata file, sql/<schema>/<table>.yml, beside its SQL (sql/<schema>/<table>.sql):

  description    what a row is, for the COMMENT ON and the analyst's guide
  grain          the columns that make a row unique
  tenant_scoped  true when the table carries tenant_id: it then gets the tenant RLS policy, unless
                 `rls_exempt` says why it cannot carry one (an external table, the policy's lookup)
  pii            none | pseudonymous (keyed pseudonyms, coarsened quasi identifiers) | clear (the
                 raw zone only)
  distribution   {key: column} or {style: all | even}; sort: the compound sort key
  readers        the roles granted SELECT
  columns        name, Redshift type (tables whose SQL is a query) and doc of every column
  refresh        how the table is kept up to date (tenantlake.warehouse.engine):
                   load    written by the load itself (per-entity tables, ops)
                   once    filled when empty (a calendar)
                   full    recomputed whole; `capture: true` records which grain keys changed
                   keys    recomputed for the grain keys the change touched: `key` columns, an
                           `affected` query over ops.refresh_pending naming them, and `narrow`:
                           how each source is cut down to them, so the work follows the change
                   tenant  keys, with the tenant as the key (marts)
  reconcile      post-load checks: pairs of queries that must agree (a mart against core)

The .sql beside it is either a table's DDL (CREATE TABLE, ops and stage helpers) or the query the
table holds (a SELECT, or a CREATE TABLE ... AS whose query is taken; `<table>.duckdb.sql` is the
embedded default's rendering where sqlglot cannot carry Redshift's).

A metadata file with `per_entity: {prefix, suffix, columns: protected | raw}` is a template: one
table per contract entity (<prefix><entity><suffix>), its columns the entity's protected projection
(tenantlake.privacy) or, for the raw zone's tables, its lake columns, documented from the contract.
sql/security/security.yml names the roles, the schemas and the policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pyarrow as pa
import yaml

from tenantlake.contracts import ENTITIES, Entity, Pii
from tenantlake.formats.rows import lake_schema
from tenantlake.privacy import CONSUMER_KEY, protected_columns
from tenantlake.settings import REPO

SQL_ROOT = REPO / "sql"
SCOPES = ("load", "once", "full", "keys", "tenant")
KINDS = ("table", "derived", "entity", "view", "external")
PII_CLASSES = ("none", "pseudonymous", "clear")
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class CatalogueError(ValueError):
    """The metadata beside a table's SQL is missing or does not fit it; the message names the file."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Redshift's
    doc: str
    nullable: bool = True
    pii: str = "none"  # none | pseudonym | coarsened (entity tables: from the contract)
    arrow: pa.DataType | None = None  # entity tables: the lake's type (the embedded default's DDL)


@dataclass(frozen=True)
class Narrow:
    """How one source of a table's query is cut down to the affected keys: each pair is (the
    source's column, the key column it must equal, or `>= key column`)."""

    source: str
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Refresh:
    scope: str
    key: tuple[str, ...] = ()
    since: str | None = None  # a date column refreshed from the key's `since` on (a daily snapshot)
    affected: str | None = None
    narrow: tuple[Narrow, ...] = ()
    capture: bool = False


@dataclass(frozen=True)
class Reconcile:
    name: str
    this: str  # a query: (key columns..., value)
    core: str  # the same shape from the layer below


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    kind: str
    description: str
    grain: tuple[str, ...]
    tenant_scoped: bool
    pii: str
    columns: tuple[Column, ...]
    refresh: Refresh
    readers: tuple[str, ...] = ()
    distribution: str | None = None  # a column, or ALL / EVEN
    sort: tuple[str, ...] = ()
    rls_exempt: str | None = None
    entity: str | None = None
    source: Path | None = None  # the .sql: DDL or query
    metadata: Path | None = None
    reconcile: tuple[Reconcile, ...] = ()

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def rls(self) -> bool:
        """Whether the tenant policy is attached: every tenant-scoped relation that can carry it."""
        return self.tenant_scoped and self.rls_exempt is None


@dataclass(frozen=True)
class SchemaInfo:
    name: str
    doc: str
    usage: tuple[str, ...] = ()
    glue_zone: str | None = None  # external schemas: the lake zone (Glue database <namespace>_<zone>)


@dataclass(frozen=True)
class Policy:
    name: str
    column: str
    type: str
    role: str
    predicate: str  # Redshift SQL condition over the attached table's `column`


@dataclass(frozen=True)
class Security:
    loader: str
    roles: Mapping[str, str]  # role -> what it is for
    ignore_rls: tuple[str, ...]
    policy: Policy
    schemas: tuple[SchemaInfo, ...]


@dataclass
class Catalogue:
    root: Path
    security: Security
    tables: dict[str, Table] = field(default_factory=dict)

    def __getitem__(self, qualified: str) -> Table:
        try:
            return self.tables[qualified]
        except KeyError:
            raise KeyError(f"{qualified}: no such table in the catalogue ({self.root})") from None

    def __iter__(self) -> Iterator[Table]:
        return iter(self.tables.values())

    def of(self, *, schema: str | None = None, kind: str | None = None, entity: str | None = None) -> list[Table]:
        return [t for t in self if (schema is None or t.schema == schema) and (kind is None or t.kind == kind)
                and (entity is None or t.entity == entity)]

    def entity_table(self, schema: str, entity: str, suffix: str = "", prefix: str = "") -> Table:
        return self[f"{schema}.{prefix}{entity.lower()}{suffix}"]

    @property
    def schemas(self) -> dict[str, SchemaInfo]:
        return {s.name: s for s in self.security.schemas}


# ---- reading -------------------------------------------------------------------------------------

def _yaml(path: Path) -> dict:
    try:
        doc = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        raise CatalogueError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(doc, dict):
        raise CatalogueError(f"{path}: expected a mapping")
    return doc


def _need(doc: dict, key: str, path: Path):
    if key not in doc or doc[key] in (None, ""):
        raise CatalogueError(f"{path}: missing `{key}`")
    return doc[key]


def _refresh(doc: dict, path: Path) -> Refresh:
    r = doc.get("refresh") or {}
    scope = r.get("scope", "load")
    if scope not in SCOPES:
        raise CatalogueError(f"{path}: refresh scope {scope!r}; expected one of {', '.join(SCOPES)}")
    key = tuple(r.get("key") or (("tenant_id",) if scope == "tenant" else ()))
    if scope in ("keys", "tenant") and not (key and r.get("affected") and r.get("narrow")):
        raise CatalogueError(f"{path}: a `{scope}` refresh needs `key`, `affected` and `narrow`")
    narrow = tuple(Narrow(source, tuple((str(k), str(v)) for k, v in pairs.items()))
                   for source, pairs in (r.get("narrow") or {}).items())
    return Refresh(scope, key, r.get("since"), r.get("affected"), narrow, bool(r.get("capture")))


def _distribution(doc: dict) -> str | None:
    d = doc.get("distribution")
    if not d:
        return None
    return d["key"] if "key" in d else str(d["style"]).upper()


def _common(doc: dict, path: Path) -> dict:
    pii = doc.get("pii", "none")
    if pii not in PII_CLASSES:
        raise CatalogueError(f"{path}: pii {pii!r}; expected one of {', '.join(PII_CLASSES)}")
    reconcile = tuple(Reconcile(_need(r, "name", path), _need(r, "this", path), _need(r, "core", path))
                      for r in doc.get("reconcile") or ())
    return {"description": " ".join(str(_need(doc, "description", path)).split()),
            "grain": tuple(_need(doc, "grain", path)), "tenant_scoped": bool(doc.get("tenant_scoped", False)),
            "pii": pii, "readers": tuple(doc.get("readers") or ()), "distribution": _distribution(doc),
            "sort": tuple(doc.get("sort") or ()), "rls_exempt": doc.get("rls_exempt"),
            "refresh": _refresh(doc, path), "metadata": path, "reconcile": reconcile}


def _declared_columns(doc: dict, path: Path, typed: bool) -> tuple[Column, ...]:
    out = []
    for c in doc.get("columns") or ():
        name = _need(c, "name", path)
        if typed and not c.get("type"):
            raise CatalogueError(f"{path}: column {name} needs a `type` (its Redshift type)")
        out.append(Column(name, str(c.get("type") or ""), " ".join(str(_need(c, "doc", path)).split()),
                          bool(c.get("nullable", True)), c.get("pii", "none")))
    return tuple(out)


def redshift_type(t: pa.DataType, name: str = "") -> str:
    """A lake column's Redshift type; structs, lists and JSON (`_extra`) are SUPER, which holds a
    400 KB item whole (VARCHAR stops at 65,535 bytes)."""
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        if name == "_extra":
            return "SUPER"
        if name == "tenant_id":
            return "VARCHAR(64)"  # as everywhere: the tenant policy's column type
        return "VARCHAR(128)" if name == "id" or name.endswith(("_id", "_key")) else "VARCHAR(4096)"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    for test, rs in ((pa.types.is_timestamp, "TIMESTAMPTZ"), (pa.types.is_date, "DATE"),
                     (pa.types.is_boolean, "BOOLEAN"), (pa.types.is_int32, "INTEGER"),
                     (pa.types.is_integer, "BIGINT"), (pa.types.is_binary, "VARBYTE")):
        if test(t):
            return rs
    return "SUPER"


META_DOCS = {  # the lake's own columns, as every entity table carries them
    "tenant_id": "The agency the row belongs to (from where the export was pulled, never from the item).",
    CONSUMER_KEY: "The consumer's keyed pseudonym (an HMAC of the agency's consumer id with the agency's "
                  "own key): joins a consumer's rows across tables, never to a person.",
    "_extra": "Attributes the contract does not declare, as DynamoDB JSON nested as in the item (kept "
              "whole, in the raw zone only: unclassified; the source of a column promoted later).",
    "_op": "What the row records: snapshot (a full export's image), insert, modify or remove.",
    "_event_ts": "When the change happened (UTC): a full export's time, or the item's change time.",
    "_sequence": "The stream record's sequence number (zero-padded), when the row came from a stream.",
    "_export_id": "The export (or stream file) the row was published from.",
    "_source_file": "The landed file the row was read from.",
    "_line": "The row's line in that file.",
}


def entity_columns(entity: Entity) -> list[Column]:
    """An entity's protected projection as warehouse columns, documented from the contract."""
    schema = lake_schema(entity)
    by_column = {a.column: a for a in entity.attributes}
    out = []
    for c in protected_columns(entity, schema):
        a = by_column.get(c.source)
        if c.rule == "pseudonym":
            doc, pii = META_DOCS[CONSUMER_KEY], "pseudonym"
        elif c.rule in ("age_band", "prefix3"):
            doc, pii = a.doc, "coarsened"
        elif a is not None:
            doc, pii = a.doc, "none"
        else:
            doc, pii = META_DOCS[c.name], "none"
        nullable = c.name not in ("tenant_id", entity_key(entity)) and (a is None or a.pii is not Pii.REFERENCE
                                                                      or not a.key)
        out.append(Column(c.name, redshift_type(c.type, c.name), doc, nullable, pii, c.type))
    return out


def entity_key(entity: Entity) -> str:
    """The column that identifies an item past raw: Consumer's pseudonym, every other entity's id."""
    return CONSUMER_KEY if entity.key.pii is Pii.REFERENCE else entity.key.column


def raw_columns(entity: Entity) -> list[Column]:
    """An entity's lake columns as the raw zone holds them (clear values: the restricted zone)."""
    by_column = {a.column: a for a in entity.attributes}
    out = []
    for f in lake_schema(entity):
        a = by_column.get(f.name)
        out.append(Column(f.name, redshift_type(f.type, f.name), a.doc if a else META_DOCS[f.name], f.nullable,
                          "clear" if a is not None and a.pii is not Pii.NONE else "none", f.type))
    return out


def _template_tables(doc: dict, path: Path, schema: str) -> list[Table]:
    common = _common(doc, path)
    kind = doc.get("kind", "entity")
    spec = doc["per_entity"] or {}
    prefix, suffix, source = spec.get("prefix", ""), spec.get("suffix", ""), spec.get("columns", "protected")
    if source not in ("protected", "raw"):
        raise CatalogueError(f"{path}: per_entity columns {source!r}; expected protected or raw")
    extra = _declared_columns(doc, path, typed=True)
    out = []
    for e in ENTITIES.values():
        name = f"{prefix}{e.name.lower()}{suffix}"
        key = entity_key(e) if source == "protected" else e.key.column
        fill = {"entity": e.name, "key": key}
        columns = tuple(entity_columns(e) if source == "protected" else raw_columns(e)) + extra
        grain = tuple(g.format(**fill) for g in common["grain"])
        sort = tuple(s.format(**fill) for s in common["sort"])
        dist = common["distribution"].format(**fill) if common["distribution"] else None
        out.append(Table(schema, name, kind, common["description"].format(**fill, doc=e.doc), grain,
                         common["tenant_scoped"], common["pii"], columns, common["refresh"], common["readers"],
                         dist, sort, common["rls_exempt"], e.name, None, path, common["reconcile"]))
    return out


def _security(root: Path) -> Security:
    path = root / "security" / "security.yml"
    doc = _yaml(path)
    p = _need(doc, "policy", path)
    policy = Policy(_need(p, "name", path), _need(p, "column", path), _need(p, "type", path),
                    _need(p, "role", path), " ".join(str(_need(p, "predicate", path)).split()))
    schemas = tuple(SchemaInfo(name, " ".join(str(_need(s, "doc", path)).split()), tuple(s.get("usage") or ()),
                               s.get("glue_zone")) for name, s in _need(doc, "schemas", path).items())
    roles = {k: " ".join(str(v).split()) for k, v in _need(doc, "roles", path).items()}
    return Security(_need(doc, "loader", path), roles, tuple(doc.get("ignore_rls") or ()), policy, schemas)


def _sql_for(path: Path) -> Path | None:
    sql = path.with_suffix(".sql")
    return sql if sql.exists() else None


@cache
def load_catalogue(root: Path = SQL_ROOT) -> Catalogue:
    """Every table of sql/ (under `root`), in file order per schema; raises CatalogueError naming
    the file when a table's SQL has no metadata beside it or the metadata is incomplete."""
    root = Path(root)
    cat = Catalogue(root, _security(root))
    order = [s.name for s in cat.security.schemas]
    for schema in order:
        folder = root / schema
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.yml")):
            doc = _yaml(path)
            tables = _template_tables(doc, path, schema) if "per_entity" in doc else \
                [_table(doc, path, schema, path.stem)]
            for t in tables:
                if t.qualified in cat.tables:
                    raise CatalogueError(f"{path}: {t.qualified} is declared twice")
                cat.tables[t.qualified] = t
        for sql in sorted(folder.glob("*.sql")):
            base = sql.name.split(".", 1)[0]
            if not (folder / f"{base}.yml").exists() and not base.startswith("_"):
                raise CatalogueError(f"{sql}: no metadata beside it ({folder / base}.yml): every table "
                                     "declares its grain, tenant scope, PII class and column docs")
    _validate(cat)
    return cat


def _table(doc: dict, path: Path, schema: str, name: str) -> Table:
    if not NAME.match(name):
        raise CatalogueError(f"{path}: {name!r} is not a table name")
    kind = doc.get("kind")
    sql = _sql_for(path)
    if kind is None:
        kind = _kind_of(sql)
    if kind not in KINDS:
        raise CatalogueError(f"{path}: kind {kind!r}; expected one of {', '.join(KINDS)}")
    columns = _declared_columns(doc, path, typed=kind == "derived")
    common = _common(doc, path)
    if kind == "table":
        columns = _ddl_columns(sql, columns, path)
    if kind == "derived" and sql is not None and not common["distribution"] and not common["sort"]:
        from tenantlake.warehouse.render import ctas_layout

        common["distribution"], common["sort"] = ctas_layout(sql)  # a CREATE TABLE ... AS names its own
    return Table(schema, name, kind, columns=columns, source=sql, **common)


def _ddl_columns(sql: Path | None, documented: tuple[Column, ...], path: Path) -> tuple[Column, ...]:
    """A DDL table's columns: names and types from its CREATE TABLE, docs from its metadata."""
    from tenantlake.warehouse.render import ddl_columns

    if sql is None:
        raise CatalogueError(f"{path}: a `table` needs its CREATE TABLE beside it ({path.with_suffix('.sql')})")
    docs = {c.name: c for c in documented}
    out = []
    for name, type_, nullable in ddl_columns(sql.read_text()):
        if name not in docs:
            raise CatalogueError(f"{path}: column {name} (in {sql.name}) has no doc")
        out.append(Column(name, type_, docs.pop(name).doc, nullable))
    if docs:
        raise CatalogueError(f"{path}: documents columns {sorted(docs)} that {sql.name} does not create")
    return tuple(out)


def _kind_of(sql: Path | None) -> str:
    """A .sql holding CREATE TABLE (columns) is a table's DDL; anything else is the query it holds."""
    from tenantlake.warehouse.render import is_ddl  # render imports nothing of ours but the catalogue's types

    return "table" if sql is not None and is_ddl(sql.read_text()) else "derived"


def _validate(cat: Catalogue) -> None:
    roles = set(cat.security.roles)
    for t in cat:
        where = t.metadata
        if t.tenant_scoped and "tenant_id" not in t.column_names:
            raise CatalogueError(f"{where}: {t.qualified} is tenant-scoped but has no tenant_id column")
        if "tenant_id" in t.column_names and not t.tenant_scoped:
            raise CatalogueError(f"{where}: {t.qualified} has a tenant_id column: declare it tenant_scoped "
                                 "(it then gets the tenant policy), or give it no tenant column")
        for r in t.readers:
            if r not in roles:
                raise CatalogueError(f"{where}: reader {r!r} is not a role in sql/security/security.yml")
        if t.kind == "derived" and t.source is None:
            raise CatalogueError(f"{where}: {t.qualified} has no query ({t.schema}/{t.name}.sql)")
        names = t.column_names
        for c in (*t.grain, *t.sort, *t.refresh.key, *([t.distribution] if t.distribution not in
                                                        (None, "ALL", "EVEN") else [])):
            if names and c not in names:
                raise CatalogueError(f"{where}: {t.qualified}: {c} is not one of its columns")
        for c in t.columns:
            if not c.doc:
                raise CatalogueError(f"{where}: {t.qualified}.{c.name} has no doc")
