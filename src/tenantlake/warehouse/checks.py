"""Post-load checks: the warehouse against the lake, and the marts against core. Not retried: a
failing check is a fact about the data, named tenant by tenant.

For every entity and every tenant checked (those the load touched):
  - history holds as many rows as the lake's protected table (every published row, once);
  - current holds exactly the lake's latest version of each of the tenant's keys, re-derived from
    the lake (sql/checks/current_rows.sql): no key missing, no row under a tenant the lake does not
    put it under, no stale version;
  - every history row came from a batch the load audit recorded for that tenant.
Then every `reconcile` pair in the catalogue (a mart's figure and the same figure from core) must
agree exactly, the tenant-level ones for the tenants checked; and every mart row must have its
whole grain (a NULL month is no month a BI tool can show) and be the only row of it.
"""

from __future__ import annotations

from collections.abc import Collection

from tenantlake.contracts import ENTITIES
from tenantlake.warehouse import render
from tenantlake.warehouse.catalogue import Narrow

CHECKS = ("history_rows", "current_rows", "audited_rows")


def post_load_checks(wh, tenants: Collection[str] | None = None) -> list[str]:
    if tenants is None:
        tenants = sorted({r[0] for r in wh._fetch("SELECT DISTINCT tenant_id FROM ops.load_audit "
                                                 "WHERE kind <> 'TENANT_REMOVED'")})
    tenants = sorted(set(tenants))
    if not tenants:
        return []
    problems: list[str] = []
    with wh._transaction():
        wh._execute("DELETE FROM stage.check_tenants")
        wh._insert_rows("stage.check_tenants", ("tenant_id",), [(t,) for t in tenants])
        for entity in ENTITIES:
            e = entity.lower()
            history, current, audited = (wh._template(name, entity, "checks") for name in CHECKS)
            for tenant, warehouse, lake in wh._fetch(history[0]):
                problems.append(f"{tenant} {entity}: {warehouse} rows in core.history_{e}, "
                                f"{lake} in lake_protected.{e}")
            for tenant, missing, foreign, stale in wh._fetch(current[0]):
                what = [f"{n} {label}" for n, label in ((missing, "keys of the lake missing"),
                                                         (foreign, "rows the lake has under no such tenant and key"),
                                                         (stale, "rows older than the lake's latest version"))
                        if n]
                problems.append(f"{tenant} {entity}: core.current_{e} has " + ", ".join(what))
            for tenant, n in wh._fetch(audited[0]):
                problems.append(f"{tenant} {entity}: {n} rows in core.history_{e} from no batch the load "
                                "audit recorded for this tenant")
        problems += reconcile(wh)
        problems += grains(wh)
        wh._execute("DELETE FROM stage.check_tenants")
    return problems


def reconcile(wh) -> list[str]:
    """Each catalogue `reconcile` pair: (key..., value) rows that must be equal, key by key. A
    tenant-level pair (first column tenant_id) is narrowed to stage.check_tenants."""
    problems = []
    for t in wh.catalogue:
        for r in t.reconcile:
            this, core = (render.parse_one(q, f"{t.metadata}: {r.name}") for q in (r.this, r.core))
            if this.selects[0].alias_or_name == "tenant_id":
                this, core = (_narrowed(wh, q) for q in (this, core))
            a, b = (_as_dict(wh.fetch(q)) for q in (this, core))
            for key in sorted(set(a) | set(b), key=str):
                if a.get(key, 0) != b.get(key, 0):
                    problems.append(f"{t.qualified}: {r.name}: {key}: {a.get(key, 0)} in the mart, "
                                    f"{b.get(key, 0)} in core")
    return problems


def grains(wh) -> list[str]:
    """Each mart's rows with a NULL grain column, and grain keys held by more than one row."""
    problems = []
    for t in wh.catalogue.of(schema="mart"):
        columns = ", ".join(t.grain)
        nulls = " OR ".join(f"{c} IS NULL" for c in t.grain)
        (null_rows, repeated), = wh._fetch(
            f"SELECT (SELECT COUNT(*) FROM {t.qualified} WHERE {nulls}), "
            f"(SELECT COUNT(*) FROM (SELECT {columns} FROM {t.qualified} GROUP BY {columns} HAVING COUNT(*) > 1) AS k)")
        if null_rows:
            problems.append(f"{t.qualified}: {null_rows} rows with a NULL in its grain ({columns})")
        if repeated:
            problems.append(f"{t.qualified}: {repeated} grain keys ({columns}) held by more than one row")
    return problems


def _narrowed(wh, query):
    sources = [Narrow(name, (("tenant_id", "tenant_id"),)) for name in render.references(query)
               if name in wh.catalogue.tables and "tenant_id" in wh.catalogue[name].column_names]
    return render.narrow(query, sources, "stage.check_tenants")


def _as_dict(rows: list[tuple]) -> dict:
    return {tuple(r[:-1]) if len(r) > 2 else r[0]: r[-1] for r in rows}
