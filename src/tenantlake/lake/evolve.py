"""Promotion: a drifted attribute declared in the contract becomes a real column, for old rows too.

Declaring the attribute in tenantlake.contracts is the whole of a data engineer's work. The next
time a table is opened, Iceberg adds the column (additive only: catalog.Lake evolves the schema);
files written before read it as null. `promote` then fills it for the rows published earlier from
what they kept in `_extra`, without re-exporting: every current raw file that predates the column
and holds the attribute in `_extra` is rewritten with the column filled (through the decoder's own
conversion, so a value converts exactly as it would in a new export) and the attribute taken out
of `_extra`, and the rewritten files replace the old ones in one Iceberg commit per table
(`tenantlake.operation=backfill`: readers that load new batches ignore it, no row was added).
The protected table gets the same value, projected by the attribute's PII class: `_extra` never
leaves raw (tenantlake.privacy), so each protected row takes it from its raw row, the same
(tenant, export, file, line).

A field declared inside a map (a struct column) is promoted the same way: older rows' structs gain
it from `_extra` (the decoder converts the undeclared part of the map as a new export would, and
it is merged into the struct the row has), and it leaves `_extra`.
"""

from __future__ import annotations

import os
import uuid

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.exceptions import CommitFailedException
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from tenantlake.contracts import ENTITIES, Attribute
from tenantlake.formats.attributes import BadValue
from tenantlake.formats.rows import attribute_value
from tenantlake.lake.catalog import Lake
from tenantlake.lake.files import Placer
from tenantlake.lake.publish import retried_on_conflict, summary
from tenantlake.lake.read import scan
from tenantlake.privacy import ProtectedColumn, protect, protected_columns


def lacks_fields(have: pa.DataType, want: pa.DataType) -> bool:
    """Whether `want` (the contract's type) has struct fields, at any depth, that `have` lacks."""
    if pa.types.is_struct(want) and pa.types.is_struct(have):
        fields = {f.name: f.type for f in have}
        return any(f.name not in fields or lacks_fields(fields[f.name], f.type) for f in want)
    if pa.types.is_list(want) and pa.types.is_list(have):
        return lacks_fields(have.value_type, want.value_type)
    return False


def _merged(have, new):
    """A row's struct (or list of structs) with the fields only `new` holds taken from it."""
    if isinstance(have, dict) and isinstance(new, dict):
        return {k: _merged(have.get(k), new.get(k)) for k in {**have, **new}}
    if isinstance(have, list) and isinstance(new, list) and len(have) == len(new):
        return [_merged(h, n) for h, n in zip(have, new, strict=True)]
    return have if have is not None else new


def _fill(table: pa.Table, attrs: list[Attribute]) -> pa.Table | None:
    """Raw rows with the attributes taken from `_extra` into their columns; None when no row holds
    any of them."""
    if "_extra" not in table.column_names:
        return None
    names = {a.name for a in attrs}
    extras = table["_extra"].to_pylist()
    docs = [orjson.loads(e) if e else {} for e in extras]
    if not any(names & set(d) for d in docs):
        return None
    values: dict[str, list] = {a.column: [] for a in attrs}
    kept = []
    for doc in docs:
        rest = dict(doc)
        for a in attrs:
            value = None
            if a.name in doc:
                try:
                    value, undeclared = attribute_value(a.kind, a.arrow_type, doc[a.name], a.name)
                except BadValue:  # a value that does not convert stays in _extra: nothing is lost
                    value, undeclared = None, doc[a.name]
                if undeclared is None:
                    del rest[a.name]
                else:
                    rest[a.name] = undeclared
            values[a.column].append(value)
        kept.append(orjson.dumps(rest, option=orjson.OPT_SORT_KEYS).decode() if rest else None)
    out = table.set_column(table.column_names.index("_extra"), "_extra", pa.array(kept, pa.string()))
    for a in attrs:
        new = values[a.column]
        if a.column in table.column_names:  # a struct that gained fields: merged into what each row has
            new = [_merged(have, n) for have, n in zip(table[a.column].to_pylist(), new, strict=True)]
        out = _set(out, a.column, pa.array(new, a.arrow_type))
    return out


def _set(table: pa.Table, name: str, array: pa.Array) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, array) if name in table.column_names \
        else table.append_column(name, array)


IDENTITY = ("tenant_id", "_export_id", "_source_file", "_line")  # one row, the same in raw and protected


def _fill_protected(rows: pa.Table, entity, missing: list[ProtectedColumn], raw: dict, raw_rows: pa.Table
                    ) -> pa.Table | None:
    """Protected rows with the missing columns projected from their raw rows' (`raw`: identity ->
    row of `raw_rows`); None when no row has a value to take."""
    at = [raw.get(k) for k in zip(*(rows[c].to_pylist() for c in IDENTITY), strict=True)]
    taken = {c.source: raw_rows[c.source].take(pa.array(at, pa.int64())) for c in missing}
    if not any(v.null_count < len(v) for v in taken.values()):
        return None
    out = rows
    for c in missing:
        array = taken[c.source]
        if c.rule != "keep":  # coarsened exactly as ingest would: through the same projection
            probe = pa.table({"tenant_id": rows["tenant_id"], c.source: array, "_event_ts": rows["_event_ts"]})
            array = protect(probe.append_column("_op", pa.nulls(len(probe), pa.string())), entity,
                            lambda t: b"")[c.name]
        out = _set(out, c.name, array)
    return out


def _lake_schema(entity):
    from tenantlake.formats.rows import lake_schema

    return lake_schema(entity)


@retry(retry=retry_if_exception_type(CommitFailedException), stop=stop_after_attempt(5),
       wait=wait_random_exponential(multiplier=0.1, max=5), reraise=True)
def promote(lake: Lake, entity_name: str, run_id: str = "promote", workdir: str = "/tmp") -> dict[str, int]:
    """Fill the columns the contract gained for rows published before them (raw from `_extra`,
    protected from raw); returns the files rewritten per zone."""
    entity = ENTITIES[entity_name]
    out = {}
    if lake.exists("raw", entity_name):
        def raw_missing(schema: pa.Schema) -> list[Attribute]:
            if "_extra" not in schema.names:
                return []
            return [a for a in entity.attributes if not a.key and (
                a.column not in schema.names or lacks_fields(schema.field(a.column).type, a.arrow_type))]

        out["raw"] = _rewrite(lake, "raw", entity_name, raw_missing, _fill, run_id, workdir)
    if lake.exists("protected", entity_name) and lake.exists("raw", entity_name):
        attributes = {a.column: a for a in entity.attributes}
        declared = [c for c in protected_columns(entity, _lake_schema(entity))
                    if c.source in attributes and not attributes[c.source].key]
        lookup: dict = {}  # the raw rows' columns a protected file lacks, read when first needed

        full = layout_schema("protected", entity)

        def protected_missing(schema: pa.Schema) -> list[ProtectedColumn]:
            return [c for c in declared if c.name not in schema.names
                    or lacks_fields(schema.field(c.name).type, full.field(c.name).type)]

        def from_raw(rows: pa.Table, missing: list[ProtectedColumn]) -> pa.Table | None:
            sources = tuple(sorted({c.source for c in missing}))
            if sources not in lookup:  # one promotion lacks the same columns in every old file
                raw = scan(lake, "raw", entity_name, None, (*IDENTITY, *sources))
                if raw is None:
                    return None
                index = {k: i for i, k in enumerate(zip(*(raw[c].to_pylist() for c in IDENTITY), strict=True))}
                lookup[sources] = (index, raw)
            return _fill_protected(rows, entity, missing, *lookup[sources])

        out["protected"] = _rewrite(lake, "protected", entity_name, protected_missing, from_raw, run_id, workdir)
    return out


def layout_schema(zone: str, entity) -> pa.Schema:
    """The zone's columns, with their types, in the order ingest writes them. A rewritten file keeps
    that order: Redshift's COPY reads Parquet columns by position, so a promoted column appended
    last would land in another column of the stage table."""
    schema = _lake_schema(entity)
    return schema if zone == "raw" else protect(schema.empty_table(), entity, lambda t: b"").schema


def layout(zone: str, entity) -> list[str]:
    return layout_schema(zone, entity).names


def _padded(rows: pa.Table, full: pa.Schema) -> pa.Table:
    """`rows` in the layout `full`: a column it lacks as nulls, a struct lacking fields with them null."""
    for field in full:
        if field.name not in rows.column_names:
            rows = rows.append_column(field.name, pa.nulls(len(rows), field.type))
        elif lacks_fields(rows[field.name].type, field.type):
            rows = _set(rows, field.name, pa.array(rows[field.name].to_pylist(), field.type))
    return rows


@retried_on_conflict
def _rewrite(lake: Lake, zone: str, entity_name: str, missing_in, fill, run_id: str, workdir: str) -> int:
    """Each current file lacking columns or struct fields (`missing_in(its schema)`) that
    `fill(rows, missing)` changes, replaced in one backfill commit; how many were rewritten."""
    table = lake.evolve(zone, entity_name)  # the schema gains the contract's new columns first
    if table.current_snapshot() is None:
        return 0
    placer = Placer(table)
    full = layout_schema(zone, ENTITIES[entity_name])
    order = full.names
    replaced, added = [], []
    for task in table.scan().plan_files():
        with table.io.new_input(task.file.file_path).open() as stream:
            schema = pq.ParquetFile(stream).schema_arrow  # the footer first: most files are current
        missing = missing_in(schema)
        if not missing:
            continue
        with table.io.new_input(task.file.file_path).open() as stream:
            rows = pq.read_table(stream)
        filled = fill(rows, missing)
        if filled is None and zone == "protected":
            # No row of this file has a value to take (a tenant that never sent the attribute), but
            # Redshift's COPY reads Parquet by position and needs as many columns as the stage table:
            # an old file left as it was would put _op's text in the promoted column (independent probe).
            filled = _padded(rows, full)
        if filled is None:
            continue
        local = os.path.join(workdir, f"promote-{uuid.uuid4().hex}.parquet")
        names = filled.column_names
        filled = filled.select([c for c in order if c in names] + [c for c in names if c not in order])
        pq.write_table(filled, local, compression="snappy")
        added.append(placer.place(local, rows["tenant_id"][0].as_py(), "promoted", "b"))
        replaced.append(task.file)
    if added:
        props = summary("backfill", run_id, files_replaced=len(replaced), columns=",".join(
            a.column for a in ENTITIES[entity_name].attributes))
        with table.transaction() as tx, tx.update_snapshot(snapshot_properties=props).overwrite() as rewrite:
            for f in replaced:
                rewrite.delete_data_file(f)
            for p in added:
                rewrite.append_data_file(p.data_file)
    return len(added)
