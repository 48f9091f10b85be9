"""The protected views: the only way an analyst reaches the lake.

lake.<entity> (Spectrum over raw/; DuckDB views on the embedded default) holds what the agencies'
tables hold, names and emails included. Analyst roles get no USAGE on it. They read
lake_protected.<entity>, one view per entity, rendered from the contract so a new column is
covered the day it is declared:
  - direct identifiers (Pii.DIRECT) are left out, and so is _extra: attributes that drifted in
    undeclared have never been classified;
  - quasi-identifiers are coarsened: a date to its year, a string to its first three characters
    (as core.dim_consumer does for the postal code);
  - a consumer's id becomes consumer_key, the keyed pseudonym f_pseudonym(tenant_id, id), so these
    views join to core.dim_consumer and to each other, never to a person.
sql/security/lake_access.sql holds the grants and attaches the tenant RLS policy to every view.
On Redshift the views are late-binding (WITH NO SCHEMA BINDING, required over external tables);
their owner, not the analyst, needs USAGE on `lake`.
"""

from __future__ import annotations

import pyarrow as pa

from tenantlake.contracts import ENTITIES, Pii
from tenantlake.formats.rows import lake_schema

SCHEMA = "lake_protected"
UNVETTED = {"_extra"}


def consumer_id_column(entity: str) -> str | None:
    """The column holding a consumer's id: Consumer's own key, or another entity's consumer_id."""
    if entity == "Consumer":
        return "id"
    return "consumer_id" if "consumer_id" in lake_schema(ENTITIES[entity]).names else None


def protected_columns(entity: str) -> list[str]:
    """The view's select list, in the lake's column order."""
    contract = ENTITIES[entity]
    pii = {a.column: a.pii for a in contract.attributes}
    consumer = consumer_id_column(entity)
    out = []
    for f in lake_schema(contract):
        kind = pii.get(f.name, Pii.NONE)
        if kind is Pii.DIRECT or f.name in UNVETTED:
            continue
        if f.name == consumer:
            out.append(f"f_pseudonym(tenant_id, {f.name}) AS consumer_key")
        elif kind is Pii.QUASI and pa.types.is_date(f.type):
            out.append(f"EXTRACT(YEAR FROM {f.name}) AS {f.name}_year")
        elif kind is Pii.QUASI:
            out.append(f"LEFT({f.name}, 3) AS {f.name}_prefix")
        else:
            out.append(f.name)
    return out


def protected_view(entity: str, dialect: str) -> str:
    name = entity.lower()
    binding = " WITH NO SCHEMA BINDING" if dialect == "redshift" else ""
    return (f"CREATE OR REPLACE VIEW {SCHEMA}.{name} AS SELECT {', '.join(protected_columns(entity))} "
            f"FROM lake.{name}{binding}")
