"""What leaves the restricted zone: each entity's rows with personal data removed or coarsened.

Landing, raw and quarantine hold clear values: they are the restricted zone, and erasure and
offboarding reach all of them. Everything past them (the protected lake tables, every warehouse
layer from stage to the marts, the lake_protected views) holds only this projection of a row,
made once per batch before it is published (in the worker that decodes each file, beside its raw
part; again at publish only for a part whose rows changed):

  direct     dropped
  quasi      coarsened to the contract's `protected_as` column: a date of birth to the age band at
             the row's own event time, a string to its first three characters
  reference  the per-tenant keyed pseudonym (tenantlake.pseudonyms), in the column `consumer_key`
  none       kept as it is

`_extra` (undeclared attributes) never leaves raw, whatever the entity: a drifted attribute has no
PII class until a data engineer declares it, and an app's new free-text field (a counselor's note
on a Debt) holds names as readily as Consumer does. Declaring it (promotion) classifies it; its
values reach the protected table then, projected by that class, for old rows too
(tenantlake.lake.evolve). ops.drift_summary shows what drifted, by path, without values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from tenantlake.contracts import Attribute, Entity, Pii
from tenantlake.pseudonyms import pair_pseudonym

CONSUMER_KEY = "consumer_key"
# (upper bound of the age in completed years, band); the last band has no bound
AGE_BANDS = ((18, "under 18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (55, "45-54"), (65, "55-64"))
OLDEST_BAND = "65+"
UNKNOWN_AGE = "unknown"


@dataclass(frozen=True)
class ProtectedColumn:
    name: str  # in the protected table
    source: str  # the raw column it is made from
    rule: str  # keep | pseudonym | age_band | prefix3
    type: pa.DataType


def _rule(a: Attribute, t: pa.DataType) -> tuple[str, str] | None:
    """(protected name, rule) for one contract attribute, or None when it never leaves raw."""
    if a.pii is Pii.DIRECT:
        return None
    if a.pii is Pii.REFERENCE:
        return CONSUMER_KEY, "pseudonym"
    if a.pii is Pii.QUASI:
        if not a.protected_as:
            raise ValueError(f"{a.name}: a quasi identifier needs protected_as (the column it becomes past raw)")
        return a.protected_as, "age_band" if pa.types.is_date(t) else "prefix3"
    return a.column, "keep"


def protected_columns(entity: Entity, lake_schema: pa.Schema) -> list[ProtectedColumn]:
    """The protected table's columns, in the lake's order, from the contract's PII classes."""
    by_column = {a.column: a for a in entity.attributes}
    out = []
    for f in lake_schema:
        a = by_column.get(f.name)
        if a is None:  # the lake's own metadata columns
            if f.name == "_extra":  # unclassified: see the module doc
                continue
            out.append(ProtectedColumn(f.name, f.name, "keep", f.type))
            continue
        rule = _rule(a, f.type)
        if rule is None:
            continue
        name, how = rule
        t = pa.string() if how in ("pseudonym", "age_band", "prefix3") else f.type
        out.append(ProtectedColumn(name, f.name, how, t))
    names = [c.name for c in out]
    if len(names) != len(set(names)):
        raise ValueError(f"{entity.name}: two columns would share a protected name: {names}")
    return out


def protected_schema(entity: Entity, lake_schema: pa.Schema) -> pa.Schema:
    nullable = {f.name: f.nullable for f in lake_schema}
    return pa.schema([pa.field(c.name, c.type, nullable.get(c.source, True) and c.name != "tenant_id")
                      for c in protected_columns(entity, lake_schema)])


def age_band(born: pa.Array, at: pa.Array) -> pa.Array:
    """The band of the age in completed years on the day of `at` (a timestamp), per row."""
    at_day = pc.cast(pc.cast(at, pa.timestamp("us", tz="UTC")), pa.date32())
    years = pc.subtract(pc.year(at_day), pc.year(born))
    before_birthday = pc.or_(pc.less(pc.month(at_day), pc.month(born)),
                             pc.and_(pc.equal(pc.month(at_day), pc.month(born)),
                                     pc.less(pc.day(at_day), pc.day(born))))
    age = pc.subtract(years, pc.cast(before_birthday, pa.int64()))
    band = pa.array([OLDEST_BAND] * len(age), pa.string())
    for bound, label in reversed(AGE_BANDS):
        band = pc.if_else(pc.less(age, bound), label, band)
    return pc.if_else(pc.is_null(born), UNKNOWN_AGE, band)


def pseudonymise(tenants: pa.Array, ids: pa.Array, key_for: Callable[[str], bytes]) -> pa.Array:
    """The keyed pseudonym of each (tenant, consumer id), computed once per distinct pair. The pair
    is the text the pseudonym is keyed over, "<tenant>|<id>" (a tenant id holds no "|")."""
    if not pa.types.is_string(ids.type):
        ids = pc.cast(ids, pa.string())
    pairs = pc.binary_join_element_wise(tenants, ids, "|")  # null where either is null
    codes = pc.dictionary_encode(pairs.combine_chunks() if isinstance(pairs, pa.ChunkedArray) else pairs)
    keys: dict[bytes, bytes] = {}
    out = []
    for pair in codes.dictionary.cast(pa.binary()).to_pylist():  # bytes: hashed as they are
        tenant_id = pair[:pair.index(b"|")]
        if tenant_id not in keys:
            keys[tenant_id] = key_for(tenant_id.decode())
        out.append(pair_pseudonym(keys[tenant_id], pair))
    return pc.take(pa.array(out, pa.string()), codes.indices)


def protect(table: pa.Table, entity: Entity, key_for: Callable[[str], bytes]) -> pa.Table:
    """A raw table of the entity (any tenants) as its protected projection."""
    columns, fields = [], []
    schema = protected_schema(entity, table.schema)
    for c, f in zip(protected_columns(entity, table.schema), schema, strict=True):
        v = table[c.source]
        if c.rule == "pseudonym":
            v = pseudonymise(table["tenant_id"], v, key_for)
        elif c.rule == "age_band":
            v = age_band(v, table["_event_ts"])
        elif c.rule == "prefix3":
            v = pc.utf8_slice_codeunits(v, 0, 3)
        columns.append(v)
        fields.append(f)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))
