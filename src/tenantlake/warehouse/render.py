"""SQL through a real parser: sql/ is Redshift's dialect, read, rewritten and written by sqlglot.

Nothing here splits or fills SQL with regular expressions. Statements are split by the parser;
a template names its entity's tables as if the entity were called `entity` (stage.entity,
core.current_entity, ...), its key column `item_key`, its column list `__columns__` and its
run-time names `:name`; rendering renames tables and columns, expands the column list and
replaces the names in the parsed tree. A statement the parser cannot read as SQL (sqlglot's
opaque Command) is refused, so every statement we send has been understood.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path

import pyarrow as pa
import sqlglot
from sqlglot import exp

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # it warns for every DISTKEY it drops
COLUMNS = "__columns__"
READ = "redshift"


class SqlError(ValueError):
    """SQL the parser does not understand, or a rewrite that does not fit it."""


def parse(text: str, where: str = "sql") -> list[exp.Expression]:
    """Every statement of a text, parsed as Redshift SQL; refuses what sqlglot reads only as an
    opaque command (it would pass unchecked)."""
    try:
        statements = [s for s in sqlglot.parse(text, read=READ) if s is not None]
    except sqlglot.errors.ParseError as e:
        raise SqlError(f"{where}: {e}") from None
    for s in statements:
        if isinstance(s, exp.Command):
            raise SqlError(f"{where}: sqlglot reads {s.sql(READ)[:60]!r} only as an opaque command")
    return statements


def parse_one(text: str, where: str = "sql") -> exp.Expression:
    (statement,) = parse(text, where)
    return statement


def sql(expression: exp.Expression, dialect: str) -> str:
    return expression.sql(dialect=dialect, comments=False)


def is_ddl(text: str) -> bool:
    """Whether a file's first statement creates a table from a column list (not from a query)."""
    first = parse(text)[0]
    return isinstance(first, exp.Create) and first.kind == "TABLE" and first.expression is None


def ddl_columns(text: str) -> list[tuple[str, str, bool]]:
    """(name, Redshift type, nullable) of a CREATE TABLE's columns."""
    create = parse(text)[0]
    out = []
    for c in create.this.expressions:
        if not isinstance(c, exp.ColumnDef):
            continue  # PRIMARY KEY and other table constraints
        not_null = any(isinstance(k.kind, exp.NotNullColumnConstraint) and not k.kind.args.get("allow_null")
                       for k in c.constraints)
        out.append((c.name, c.kind.sql(READ), not not_null))
    return out


# ---- a table's query ----------------------------------------------------------------------------

@cache
def _file(path: Path) -> tuple[exp.Expression, ...]:
    return tuple(parse(path.read_text(), str(path)))


def file_statements(path: Path) -> list[exp.Expression]:
    return [s.copy() for s in _file(path)]


def for_dialect(source: Path, dialect: str) -> Path:
    """`<name>.<dialect>.sql` beside `source` where present (a rendering sqlglot cannot give, or
    one the dialect runs better), else `source` itself."""
    override = source.with_name(source.name.replace(".sql", f".{dialect}.sql"))
    return override if dialect != READ and override.exists() else source


def query_of(source: Path, dialect: str) -> tuple[exp.Expression, list[exp.Expression]]:
    """A derived table's query (the file's SELECT, or the query of its CREATE TABLE ... AS) and the
    statements that follow it in the file; `<table>.<dialect>.sql` overrides it where present.
    Returned as copies, free to rewrite."""
    first, *rest = file_statements(for_dialect(source, dialect))
    if isinstance(first, exp.Create) and first.expression is not None:
        first = first.expression
    if not isinstance(first, exp.Query):
        raise SqlError(f"{source}: its first statement is neither a query nor CREATE TABLE ... AS")
    return first, [s for s in rest if not isinstance(s, exp.Comment)]  # comments come from the catalogue


def ctas_layout(source: Path) -> tuple[str | None, tuple[str, ...]]:
    """DISTSTYLE/DISTKEY and SORTKEY of a CREATE TABLE ... AS file (used when its metadata names none)."""
    first = _file(source)[0]
    dist, sort = None, ()
    props = first.args.get("properties") if isinstance(first, exp.Create) else None
    for p in props.expressions if props else ():
        if isinstance(p, exp.DistStyleProperty):
            dist = p.this.name.upper()
        elif isinstance(p, exp.DistKeyProperty):
            dist = p.this.name
        elif isinstance(p, exp.SortKeyProperty):
            sort = tuple(i.name for i in p.this)
    return dist, sort


def references(query: exp.Expression) -> set[str]:
    """The schema-qualified tables a query reads (CTEs have no schema, so they are not counted)."""
    return {f"{t.db}.{t.name}" for t in query.find_all(exp.Table) if t.db}


# ---- rewriting ----------------------------------------------------------------------------------

def rename(tree: exp.Expression, tables: Mapping[str, str] = {}, columns: Mapping[str, str] = {},
           null_columns: Iterable[str] = ()) -> exp.Expression:
    """Tables renamed (schema.table -> schema.table, as sources and as column qualifiers), columns
    renamed, and columns that do not exist replaced by NULL (an entity without consumer_key)."""
    nulls = set(null_columns)
    split = {k: v.split(".") for k, v in tables.items()}
    for t in list(tree.find_all(exp.Table)):
        new = split.get(f"{t.db}.{t.name}")
        if new:
            t.set("db", exp.to_identifier(new[0]))
            t.set("this", exp.to_identifier(new[1]))
    for c in list(tree.find_all(exp.Column)):
        if c.table and c.args.get("db") is not None:
            new = split.get(f"{c.text('db')}.{c.table}")
            if new:
                c.set("db", exp.to_identifier(new[0]))
                c.set("table", exp.to_identifier(new[1]))
        if c.name in nulls:
            c.replace(exp.Null())
        elif c.name in columns:
            c.set("this", exp.to_identifier(columns[c.name]))
    renamed = {".".join(v) for v in split.values()}
    for schema in list(tree.find_all(exp.Schema)):  # an INSERT's column list into a renamed table
        target = schema.this
        if isinstance(target, exp.Table) and f"{target.db}.{target.name}" in renamed:
            for i in schema.expressions:
                if isinstance(i, exp.Identifier) and i.name in columns:
                    i.replace(exp.to_identifier(columns[i.name]))
    return tree


def _mentions(node: exp.Expression, marker: str) -> bool:
    """Whether a list item stands for the column list itself: `marker`, `b.marker`, `marker = b.marker`
    (not a larger clause that merely contains one, such as a MERGE's WHEN)."""
    if isinstance(node, exp.Identifier | exp.Column):
        return node.name == marker
    if isinstance(node, exp.EQ):
        return _mentions(node.this, marker) or _mentions(node.expression, marker)
    return False


def expand(tree: exp.Expression, columns: Sequence[str], marker: str = COLUMNS) -> exp.Expression:
    """Every list item that mentions `marker` (a column, `b.marker`, `marker = b.marker`) becomes
    one item per column, in order."""
    targets = [(node, key) for node in tree.walk() for key, value in node.args.items()
               if isinstance(value, list) and any(isinstance(v, exp.Expression) and _mentions(v, marker)
                                                  for v in value)]
    for node, key in targets:
        out = []
        for v in node.args[key]:
            if not (isinstance(v, exp.Expression) and _mentions(v, marker)):
                out.append(v)
                continue
            for name in columns:
                copy = v.copy()
                for i in list(copy.find_all(exp.Identifier)):
                    if i.name == marker:
                        i.replace(exp.to_identifier(name))
                if isinstance(copy, exp.Identifier) and copy.name == marker:
                    copy = exp.to_identifier(name)
                out.append(copy)
        node.set(key, out)
    return tree


def fill(tree: exp.Expression, **values: str) -> exp.Expression:
    """`:name` placeholders replaced by string literals (run-time names such as an entity)."""
    for p in list(tree.find_all(exp.Placeholder)):
        if p.name not in values:
            raise SqlError(f"no value for :{p.name}")
        p.replace(exp.Literal.string(values[p.name]))
    return tree


def _condition(pairs: Iterable[tuple[str, str]], source: str, keys: str = "_k") -> exp.Expression:
    parts = []
    for column, key in pairs:
        if key.startswith(">="):
            parts.append(exp.GTE(this=exp.column(column, source), expression=exp.column(key[2:].strip(), keys)))
        else:
            parts.append(exp.EQ(this=exp.column(key, keys), expression=exp.column(column, source)))
    return exp.and_(*parts)


def narrow(query: exp.Expression, narrows: Sequence, keys_table: str) -> exp.Expression:
    """Each narrowed source of the query read only where it meets the affected keys:
    `core.x AS a` becomes `(SELECT * FROM core.x AS _n WHERE EXISTS (SELECT 1 FROM <keys> AS _k
    WHERE _k.key = _n.column ...)) AS a`, so the query's work follows the keys, not the table. A
    `>= key` pair bounds the source from below by the keys' smallest value (an uncorrelated
    scalar: a range, not a join per key)."""
    by_source = {n.source: n for n in narrows}
    for t in list(query.find_all(exp.Table)):
        n = by_source.get(f"{t.db}.{t.name}")
        if n is None:
            continue
        equal = [(c, k) for c, k in n.pairs if not k.startswith(">=")]
        conditions = [exp.GTE(this=exp.column(c, "_n"), expression=exp.Subquery(this=exp.select(
            exp.Min(this=exp.column(k[2:].strip(), "_k"))).from_(exp.to_table(keys_table).as_("_k"))))
            for c, k in n.pairs if k.startswith(">=")]
        if equal:
            conditions.insert(0, exp.Exists(this=exp.select("1").from_(exp.to_table(keys_table).as_("_k")).where(
                _condition(equal, "_n"))))
        inner = exp.select("*").from_(exp.to_table(n.source).as_("_n")).where(exp.and_(*conditions))
        t.replace(exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(t.alias or t.name))))
    return query


def within(target: str, columns: Sequence[str], query: exp.Expression, keys_table: str,
           key: Sequence[str], since: str | None) -> exp.Expression:
    """INSERT INTO target (columns) the query's rows whose key is among the affected keys (and,
    for a daily table, whose date is on or after the key's `since`)."""
    pairs = [(k, k) for k in key] + ([(since, ">= since")] if since else [])
    keys = exp.select("1").from_(exp.to_table(keys_table).as_("_k")).where(_condition(pairs, "_q"))
    select = _select_from(query, columns).where(exp.Exists(this=keys))
    return exp.insert(select, target, columns=list(columns))


def insert_all(target: str, columns: Sequence[str], query: exp.Expression) -> exp.Expression:
    return exp.insert(_select_from(query, columns), target, columns=list(columns))


def _select_from(query: exp.Expression, columns: Sequence[str]) -> exp.Select:
    """SELECT columns FROM (query) AS _q, the query's WITH lifted to the top: Redshift refuses WITH
    RECURSIVE inside a subquery (core.dim_date's calendar), which DuckDB takes."""
    ctes = query.args.get("with_")
    if ctes is not None:
        query = query.copy()
        query.set("with_", None)
    select = exp.select(*columns).from_(exp.Subquery(this=query, alias=exp.TableAlias(this=exp.to_identifier("_q"))))
    if ctes is not None:
        select.set("with_", ctes)
    return select


def delete_within(target: str, keys_table: str, key: Sequence[str], since: str | None) -> exp.Expression:
    """DELETE FROM target USING the affected keys (USING, not a correlated subquery: both
    backends plan it as a join)."""
    schema, name = target.split(".")
    pairs = [(k, k) for k in key] + ([(since, ">= since")] if since else [])
    cond = []
    for column, k in pairs:
        col = exp.Column(this=exp.to_identifier(column), table=exp.to_identifier(name), db=exp.to_identifier(schema))
        if k.startswith(">="):
            cond.append(exp.GTE(this=col, expression=exp.column(k[2:].strip(), "_k")))
        else:
            cond.append(exp.EQ(this=exp.column(k, "_k"), expression=col))
    return exp.Delete(this=exp.to_table(target), using=[exp.to_table(keys_table).as_("_k")],
                      where=exp.Where(this=exp.and_(*cond)))


# ---- types and DDL ------------------------------------------------------------------------------

def duckdb_type(redshift: str, arrow: pa.DataType | None = None) -> str:
    """The embedded default's type for a column: from the lake's Arrow type where known (nested
    types stay nested), else from the Redshift type (SUPER holds JSON)."""
    if arrow is not None:
        return _arrow_duckdb(arrow)
    t = exp.DataType.build(redshift, dialect=READ)
    if t.this in (exp.DataType.Type.VARCHAR, exp.DataType.Type.CHAR, exp.DataType.Type.NVARCHAR,
                  exp.DataType.Type.TEXT):
        return "VARCHAR"
    if t.this == exp.DataType.Type.SUPER:
        return "JSON"
    return t.sql("duckdb")


def _arrow_duckdb(t: pa.DataType) -> str:
    if isinstance(t, pa.ExtensionType):
        return "JSON" if t.extension_name == "arrow.json" else _arrow_duckdb(t.storage_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "VARCHAR"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"{_arrow_duckdb(t.value_type)}[]"
    if pa.types.is_struct(t):
        return "STRUCT(" + ", ".join(f'"{f.name}" {_arrow_duckdb(f.type)}' for f in t) + ")"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    for test, name in ((pa.types.is_date, "DATE"), (pa.types.is_boolean, "BOOLEAN"), (pa.types.is_int32, "INTEGER"),
                       (pa.types.is_integer, "BIGINT"), (pa.types.is_binary, "BLOB"),
                       (pa.types.is_floating, "DOUBLE")):
        if test(t):
            return name
    raise SqlError(f"no DuckDB type for {t}")


def create_table(table, dialect: str, columns=None) -> exp.Create:
    """CREATE TABLE IF NOT EXISTS from the catalogue: Redshift gets its distribution and sort
    keys; the embedded default its own types (it has no SUPER and no DISTKEY)."""
    cols = []
    for c in columns or table.columns:
        type_ = c.type if dialect == READ else duckdb_type(c.type, c.arrow)
        kind = exp.DataType.build(type_, dialect=READ if dialect == READ else "duckdb")
        constraints = [] if c.nullable else [exp.ColumnConstraint(kind=exp.NotNullColumnConstraint())]
        cols.append(exp.ColumnDef(this=exp.to_identifier(c.name), kind=kind, constraints=constraints))
    props = []
    if dialect == READ:
        if table.distribution in ("ALL", "EVEN"):
            props.append(exp.DistStyleProperty(this=exp.Var(this=table.distribution)))
        elif table.distribution:
            props.append(exp.DistKeyProperty(this=exp.to_identifier(table.distribution)))
        if table.sort:
            props.append(exp.SortKeyProperty(this=[exp.to_identifier(s) for s in table.sort], compound=True))
    return exp.Create(this=exp.Schema(this=exp.to_table(table.qualified), expressions=cols), kind="TABLE",
                      exists=True, properties=exp.Properties(expressions=props) if props else None)


def comment(target: str, text: str, kind: str = "TABLE") -> exp.Comment:
    """COMMENT ON TABLE / COLUMN, the text a proper string literal (quotes escaped by the generator)."""
    if kind == "COLUMN":
        schema, table, column = target.split(".")
        this = exp.Column(this=exp.to_identifier(column), table=exp.to_identifier(table), db=exp.to_identifier(schema))
    else:
        this = exp.to_table(target)
    return exp.Comment(this=this, kind=kind, expression=exp.Literal.string(text))


def sql_text(schema: str, table: str, dialect: str = READ, root: Path | None = None) -> str:
    """The SQL the warehouse reads for a table in a dialect: `<table>.<dialect>.sql` where present,
    else the file itself (Redshift) or sqlglot's rendering of its statements."""
    from tenantlake.warehouse.catalogue import SQL_ROOT

    source = (root or SQL_ROOT) / schema / f"{table}.sql"
    if for_dialect(source, dialect) != source:
        return for_dialect(source, dialect).read_text()
    if dialect == READ:
        return source.read_text()
    return ";\n".join(sql(s, dialect) for s in file_statements(source))
