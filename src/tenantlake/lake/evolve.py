"""Promotion: a drifted attribute declared in the contract becomes a real column, for old rows too.

Declaring the attribute in tenantlake.contracts is the whole of a data engineer's work. The next
time a table is opened, Iceberg adds the column (additive only: catalog.Lake evolves the schema);
files written before read it as null. `promote` then fills it for the rows published earlier from
what they kept in `_extra`, without re-exporting: every current file that predates the column
and holds the attribute in `_extra` is rewritten with the column filled (through the decoder's own
conversion, so a value converts exactly as it would in a new export) and the attribute taken out
of `_extra`, and the rewritten files replace the old ones in one Iceberg commit per table
(`tenantlake.operation=backfill`: readers that load new batches ignore it, no row was added).
The protected table gets the same value, projected by the attribute's PII class.

Top-level attributes are promoted this way; a new field inside a declared map becomes a column of
its struct for new data, and older rows keep it in `_extra`.
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
from tenantlake.lake.publish import summary
from tenantlake.privacy import protected_columns


def _fill(table: pa.Table, entity, attrs: list[Attribute], protected: bool) -> pa.Table | None:
    """The rows with the attributes taken from `_extra` into their columns; None when no row holds
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
    columns = {c.source: c for c in protected_columns(entity, _lake_schema(entity))} if protected else None
    for a in attrs:
        array = pa.array(values[a.column], a.arrow_type)
        name = a.column
        if columns is not None:
            c = columns.get(a.column)
            if c is None:  # a direct identifier: never past raw
                continue
            name = c.name
            if c.rule != "keep":  # coarsened exactly as ingest would: through the same projection
                from tenantlake.privacy import protect

                probe = pa.table({"tenant_id": table["tenant_id"], a.column: array, "_event_ts": table["_event_ts"]})
                array = protect(probe.append_column("_op", pa.nulls(len(probe), pa.string())), entity,
                                lambda t: b"")[name]
        out = out.set_column(out.column_names.index(name), name, array) if name in out.column_names \
            else out.append_column(name, array)
    return out


def _lake_schema(entity):
    from tenantlake.formats.rows import lake_schema

    return lake_schema(entity)


@retry(retry=retry_if_exception_type(CommitFailedException), stop=stop_after_attempt(5),
       wait=wait_random_exponential(multiplier=0.1, max=5), reraise=True)
def promote(lake: Lake, entity_name: str, run_id: str = "promote", workdir: str = "/tmp") -> dict[str, int]:
    """Fill the columns the contract gained from the `_extra` of rows published before them;
    returns the files rewritten per zone."""
    entity = ENTITIES[entity_name]
    out = {}
    for zone in ("raw", "protected"):
        if not lake.exists(zone, entity_name):
            continue
        table = lake.evolve(zone, entity_name)  # the schema gains the contract's new columns first
        if table.current_snapshot() is None:
            continue
        placer = Placer(table)
        replaced, added = [], []
        for task in table.scan().plan_files():
            with table.io.new_input(task.file.file_path).open() as stream:
                names = pq.ParquetFile(stream).schema_arrow.names  # the footer first: most files are current
            missing = [a for a in entity.attributes if a.column not in names and not a.key]
            if not missing or "_extra" not in names:
                continue
            with table.io.new_input(task.file.file_path).open() as stream:
                rows = pq.read_table(stream)
            filled = _fill(rows, entity, missing, protected=zone == "protected")
            if filled is None:
                continue
            local = os.path.join(workdir, f"promote-{uuid.uuid4().hex}.parquet")
            pq.write_table(filled, local, compression="snappy")
            added.append(placer.place(local, rows["tenant_id"][0].as_py(), "promoted", "b"))
            replaced.append(task.file)
        if added:
            props = summary("backfill", run_id, files_replaced=len(replaced), columns=",".join(
                a.column for a in entity.attributes))
            with table.transaction() as tx, tx.update_snapshot(snapshot_properties=props).overwrite() as rewrite:
                for f in replaced:
                    rewrite.delete_data_file(f)
                for p in added:
                    rewrite.append_data_file(p.data_file)
        out[zone] = len(added)
    return out
