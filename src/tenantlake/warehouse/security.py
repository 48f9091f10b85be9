"""Roles, row-level security, grants and comments: generated from the catalogue, never listed by hand.

Every tenant-scoped relation gets the tenant policy (unless its metadata says why it cannot carry
one), every reader in its metadata gets SELECT, every table and column its COMMENT ON. A new
tenant-scoped table in sql/ therefore cannot be left without its policy.

Redshift statements that sqlglot has no grammar for (CREATE ROLE, CREATE/ATTACH RLS POLICY, ALTER
TABLE ... ROW LEVEL SECURITY, GRANT IGNORE RLS, CREATE EXTERNAL SCHEMA) are typed values here,
built from checked names and checked by their structure in tests; everything else is a parsed
sqlglot expression. Nothing is opaque text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import exp

from tenantlake.warehouse.catalogue import Catalogue, Table
from tenantlake.warehouse.render import READ, comment, parse_one

IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,126}$")
QUALIFIED = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
GLUE_NAME = re.compile(r"^[a-z0-9_]{1,255}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]+$")


def checked(value: str, pattern: re.Pattern, what: str) -> str:
    """Names and literals written into a typed statement match a strict pattern (no quote, no
    space can reach the SQL)."""
    if not pattern.fullmatch(value):
        raise ValueError(f"{value!r} is not a {what} that may be written into SQL")
    return value


@dataclass(frozen=True)
class CreateRole:
    role: str

    def __post_init__(self):
        checked(self.role, IDENT, "role name")

    def sql(self) -> str:
        return f"CREATE ROLE {self.role}"


@dataclass(frozen=True)
class GrantSystem:
    """A system permission granted to a role (GRANT IGNORE RLS TO ROLE ...)."""

    privilege: str
    role: str

    def __post_init__(self):
        if self.privilege not in ("IGNORE RLS", "EXPLAIN RLS"):
            raise ValueError(f"{self.privilege!r} is not a system permission we grant")
        checked(self.role, IDENT, "role name")

    def sql(self) -> str:
        return f"GRANT {self.privilege} TO ROLE {self.role}"


@dataclass(frozen=True)
class CreateRlsPolicy:
    name: str
    column: str
    type: str
    predicate: exp.Expression  # parsed: a condition over `column`

    def __post_init__(self):
        checked(self.name, IDENT, "policy name")
        checked(self.column, IDENT, "column name")
        exp.DataType.build(self.type, dialect=READ)

    def sql(self) -> str:
        return (f"CREATE RLS POLICY {self.name} WITH ({self.column} {self.type}) "
                f"USING ({self.predicate.sql(dialect=READ)})")


@dataclass(frozen=True)
class GrantToPolicy:
    """SELECT on a table the policy's predicate looks up, granted to the policy itself: Redshift
    asks for it explicitly now (CREATE RLS POLICY's usage notes; earlier it granted it itself), and
    without it every query of a relation the policy is attached to fails."""

    table: str
    policy: str

    def __post_init__(self):
        checked(self.table, QUALIFIED, "table name")
        checked(self.policy, IDENT, "policy name")

    def sql(self) -> str:
        return f"GRANT SELECT ON TABLE {self.table} TO RLS POLICY {self.policy}"


@dataclass(frozen=True)
class AttachRlsPolicy:
    policy: str
    tables: tuple[str, ...]
    role: str

    def __post_init__(self):
        checked(self.policy, IDENT, "policy name")
        checked(self.role, IDENT, "role name")
        for t in self.tables:
            checked(t, QUALIFIED, "table name")

    def sql(self) -> str:
        return f"ATTACH RLS POLICY {self.policy} ON {', '.join(self.tables)} TO ROLE {self.role}"


@dataclass(frozen=True)
class RowLevelSecurity:
    table: str
    on: bool = True

    def __post_init__(self):
        checked(self.table, QUALIFIED, "table name")

    def sql(self) -> str:
        return f"ALTER TABLE {self.table} ROW LEVEL SECURITY {'ON' if self.on else 'OFF'}"


@dataclass(frozen=True)
class CreateExternalSchema:
    """An external schema over a Glue database: the lake's Iceberg tables need no partitions
    registered (Spectrum reads the table's current snapshot from its metadata)."""

    schema: str
    database: str
    iam_role: str

    def __post_init__(self):
        checked(self.schema, IDENT, "schema name")
        checked(self.database, GLUE_NAME, "Glue database name")
        checked(self.iam_role, ROLE_ARN, "IAM role ARN")

    def sql(self) -> str:
        return (f"CREATE EXTERNAL SCHEMA IF NOT EXISTS {self.schema} FROM DATA CATALOG DATABASE "
                f"'{self.database}' IAM_ROLE '{self.iam_role}'")


TYPED = (CreateRole, GrantSystem, CreateRlsPolicy, GrantToPolicy, AttachRlsPolicy, RowLevelSecurity,
         CreateExternalSchema)
Statement = exp.Expression | CreateRole | GrantSystem | CreateRlsPolicy | GrantToPolicy | AttachRlsPolicy | \
    RowLevelSecurity | CreateExternalSchema


def text(statement: Statement, dialect: str = READ) -> str:
    return statement.sql(dialect=dialect, comments=False) if isinstance(statement, exp.Expression) \
        else statement.sql()


# ---- generated from the catalogue --------------------------------------------------------------

def roles(cat: Catalogue) -> list[Statement]:
    return [CreateRole(r) for r in cat.security.roles]


def policy(cat: Catalogue) -> list[Statement]:
    """The tenant policy, attached to every tenant-scoped relation that can carry it, and turned on."""
    p = cat.security.policy
    protected = [t.qualified for t in cat if t.rls]
    predicate = parse_one(f"SELECT {p.predicate}").selects[0]
    out: list[Statement] = [CreateRlsPolicy(p.name, p.column, p.type, predicate)]
    lookups = sorted({f"{t.db}.{t.name}" for t in predicate.find_all(exp.Table)})
    out += [GrantToPolicy(t, p.name) for t in lookups]
    out += [AttachRlsPolicy(p.name, tuple(protected[i:i + 20]), p.role) for i in range(0, len(protected), 20)]
    out += [RowLevelSecurity(t) for t in protected]
    return out


def grants(cat: Catalogue) -> list[Statement]:
    """USAGE on schemas and SELECT on tables for their readers; the loader and the cross-agency
    role see every row; nobody but the loader reaches an external (lake) schema."""
    sec = cat.security
    out: list[Statement] = []
    for s in sec.schemas:
        if s.glue_zone:
            out.append(parse_one(f"REVOKE USAGE ON SCHEMA {s.name} FROM PUBLIC"))
            out.append(parse_one(f"GRANT USAGE ON SCHEMA {s.name} TO ROLE {sec.loader}"))
        elif s.usage:
            out.append(parse_one(f"GRANT USAGE ON SCHEMA {s.name} TO " + ", ".join(f"ROLE {r}" for r in s.usage)))
    for t in cat:
        if t.readers and t.kind != "external":
            out.append(parse_one(f"GRANT SELECT ON {t.qualified} TO " + ", ".join(f"ROLE {r}" for r in t.readers)))
    out += [GrantSystem("IGNORE RLS", r) for r in sec.ignore_rls]
    return out


def commented(t: Table) -> bool:
    """What gets COMMENT ON: everything the warehouse itself holds (not the lake's external tables)."""
    return t.kind != "external"


def comments(cat: Catalogue, dialect: str = READ) -> list[Statement]:
    """COMMENT ON every table and column (views: the view itself on Redshift, whose late-binding
    views take no column comments; the embedded default comments their columns too)."""
    out: list[Statement] = []
    for t in cat:
        if not commented(t):
            continue
        out.append(comment(t.qualified, t.description, "VIEW" if t.kind == "view" else "TABLE"))
        if t.kind != "view" or dialect != READ:
            out += [comment(f"{t.qualified}.{c.name}", c.doc, "COLUMN") for c in t.columns]
    return out


def agency_views(cat: Catalogue) -> list[tuple[str, str]]:
    """The embedded default's stand-in for the policy: (view, table) for every RLS-protected table
    the agency role reads; the view shows the tenant the session set (DuckDBWarehouse.as_agency)."""
    role = cat.security.policy.role
    return [(f"{t.schema}_agency.{t.name}", t.qualified) for t in cat if t.rls and role in t.readers]
