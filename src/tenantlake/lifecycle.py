"""A tenant's life: one consumer's erasure, offboarding, and what planning must refuse.

**Erasure** (GDPR / CCPA) of one consumer of one tenant, given the agency's own consumer id:
  1. the request is recorded by pseudonym (ops.erasures: no clear id is ever stored), so from this
     moment ingest drops the consumer's rows from any later export that still carries them;
  2. landing: every export data file and stream file of the tenant is rewritten without the lines
     of the consumer's items (the consumer itself, every item whose consumer field, consumerId,
     is exactly theirs, and their items by id), its manifest's MD5 and item counts updated, so the
     export still verifies; a line that cannot be read is theirs only if it holds their id as a
     whole JSON string, never as a substring of another;
  3. quarantine: rows whose item, read from the original line as ingest reads it, is theirs by the
     same rule;
  4. the warehouse (every layer, SCD2 history included) through its own erase, then marts refresh;
  5. the batch log's audit results scrubbed of the values of their items (results hold no value of
     a personal or reference column, and drift holds no values at all);
  6. protected and raw rows, through Iceberg deletes (raw last: it is where a rerun finds their
     items again);
  7. every snapshot older than those deletes expired and every file no longer referenced removed,
     so nothing erased stays readable through time travel or on disk;
  8. the request marked complete with the rows removed per layer, added to what earlier runs removed.
Every step is idempotent and driven by (tenant, consumer id) alone, so a request killed at any
point completes when run again. A landed file that cannot be read (a truncated gzip) does not stop
the other layers: it is named in the request's record, which stays incomplete until a rerun can
rewrite it. An empty id and an offboarded tenant are refused before anything is done.

**Offboarding** removes every trace of a tenant: a tombstone first (planning refuses the tenant
from then on), then its partitions of every lake table, its landing prefix, the warehouse (the
load audit reduced to a record that it existed), its watermarks and export request ledger, its
run summaries' entries, its rows of the ops lake twin, and its pseudonym key (the local key file,
or the secret in aws mode), so any copy of a pseudonym left elsewhere can no longer be linked; then
history is forgotten as for an erasure. The tombstone holds the report of what was removed, by layer.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import reduce

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import And, EqualTo, In, Or

from tenantlake.formats.streams import (
    BOM,
    json_bytes,
    pipes_documents,
    pipes_entries,
    records_of,
    split_records,
)
from tenantlake.lake import Lake
from tenantlake.lake.catalog import BATCH_LOG, ENTITY_ZONES, OPS_TABLES
from tenantlake.lake.maintenance import delete_rows, forget_history
from tenantlake.lake.publish import log_batches
from tenantlake.lake.read import grouped, scan
from tenantlake.storage import Store

ERASURES = "erasures"
log = logging.getLogger(__name__)


def erased_keys(lake: Lake, tenant_ids: set[str]) -> dict[str, set[str]]:
    """The pseudonyms of the consumers erased so far, per tenant (no clear id is ever stored)."""
    rows = scan(lake, "ops", ERASURES, In("tenant_id", tenant_ids), ("tenant_id", "consumer_key")) \
        if tenant_ids else None
    return grouped(rows, "consumer_key", tenant_ids)


def tombstone_key(tenant_id: str) -> str:
    return f"_state/offboarded/tenant_id={tenant_id}.json"


def offboarded_tenants(state: Store) -> set[str]:
    """Tenants offboarded from this lake: planning refuses them until they leave the registry."""
    return {k.rsplit("tenant_id=", 1)[1].removesuffix(".json") for k in state.list("_state/offboarded/")
            if k.endswith(".json")}


class ErasureRefused(ValueError):
    """An erasure that must not start (an empty consumer id, an offboarded tenant): nothing was done."""


class OffboardRefused(ValueError):
    """An offboarding that must not start (no tenant of the registry by that id): nothing was done."""


class ErasureIncomplete(RuntimeError):
    """Every layer was erased but some landed file could not be rewritten: the request is recorded
    incomplete (the files named in it), so a rerun retries what is left."""

    def __init__(self, message: str, result: dict):
        super().__init__(message)
        self.result = result


# ---- landing ----------------------------------------------------------------------------------------

def _consumer_fields(entity: str) -> tuple[str, ...]:
    """The attribute (and its column, as audit rows hold it) linking an entity's item to its
    consumer: `id` for Consumer, `consumerId` for the others; none for an entity without one
    (Counselor). A table the contracts do not know is read as the common case."""
    from tenantlake.contracts import ENTITIES

    contract = ENTITIES.get(entity)
    if contract is None:
        return ("consumerId", "consumer_id")
    ref = contract.consumer_reference
    return (ref.name, ref.column) if ref is not None else ()


class _Theirs:
    """Whether a line (a landed line or record, a quarantined item) is one consumer's: its item
    names them exactly in the entity's consumer field, or is one of their items by its id. A line
    whose item cannot be read is theirs only when it holds their id as a whole JSON string: never
    by a substring ("12" is not "123"; ENROLLED names no consumer)."""

    def __init__(self, entity: str, consumer_id: str, item_ids: set[str] = frozenset()):
        import json

        self.consumer_id, self.fields = consumer_id, _consumer_fields(entity)
        self.item_ids = set(item_ids) - {""}
        forms = {consumer_id} | self.item_ids
        self.tokens = {orjson.dumps(consumer_id), json.dumps(consumer_id).encode()}  # as a whole JSON string
        # a file that holds none of these bytes cannot hold a line of theirs (any JSON spelling)
        self.needles = {n for i in forms for n in (i.encode(), orjson.dumps(i)[1:-1], json.dumps(i).encode()[1:-1])}

    def may_be_in(self, text: bytes) -> bool:
        return any(n in text for n in self.needles)

    def line(self, raw: bytes | None) -> bool:
        from tenantlake.ingest import item_of, plain_string

        raw = raw or b""
        item = item_of(raw)
        if not item:
            return any(t in raw for t in self.tokens)
        named = [plain_string(item[k]) for k in self.fields if k in item]
        item_id = plain_string(item.get("id"))
        if self.consumer_id in named or (item_id is not None and item_id in self.item_ids):
            return True
        if any(n is not None for n in named) or (not named and item_id is not None):
            return False  # it names another consumer, or is an item of no consumer's
        # neither its id nor a readable consumer (one sent as {"SS": [...]}, say): by the whole string
        return any(t in raw for t in self.tokens)


def _entity_of(key: str) -> str:
    """The entity of a landed key: tenant=<id>/table=<entity>/..."""
    for part in key.split("/"):
        if part.startswith("table="):
            return part.removeprefix("table=")
    return ""


def _without(text: bytes, theirs: _Theirs) -> tuple[bytes, int]:
    """JSON lines without the consumer's lines; and how many went."""
    kept, gone = [], 0
    for line in text.splitlines(keepends=True):
        if line.strip() and theirs.line(line):
            gone += 1
        else:
            kept.append(line)
    return b"".join(kept), gone


def erase_from_landing(landing: Store, tenant_id: str, consumer_id: str,
                       items: dict[str, set[str]] | None = None,
                       unreadable: list[str] | None = None) -> int:
    """Rewrite the tenant's landed export files and stream files without the consumer's lines,
    keeping each export verifiable (manifest MD5s and item counts updated). Returns lines removed.
    A file that cannot be read (a truncated gzip) is skipped and named in `unreadable` (the rest
    is still rewritten); without that list, it raises."""
    items = items or {}
    removed = 0
    prefix = f"tenant={tenant_id}/"
    for key in landing.list(prefix):
        entity = _entity_of(key)
        theirs = _Theirs(entity, consumer_id, items.get(entity, set()))
        try:
            if key.endswith("/manifest-files.json"):
                removed += _rewrite_export(landing, key, theirs, unreadable)
            elif "/streams/" in key:
                removed += _rewrite_stream(landing, key, theirs)
        except _Unreadable as e:
            if unreadable is None:
                raise ValueError(str(e)) from None
            unreadable.append(str(e))
    return removed


def scrub_landed(landing: Store, source: str, entity: str, consumer_ids: set[str]) -> int:
    """One landed export (its manifest-summary key) or stream file without the lines of these
    consumers, already erased: a later export that still carries them (the agency has not deleted
    them yet). Returns lines removed."""
    removed = 0
    for consumer_id in sorted(consumer_ids):
        theirs = _Theirs(entity, consumer_id)
        if source.endswith("/manifest-summary.json"):
            removed += _rewrite_export(landing, source.rsplit("/", 1)[0] + "/manifest-files.json", theirs, None)
        else:
            removed += _rewrite_stream(landing, source, theirs)
    return removed


class _Unreadable(Exception):
    """A landed file erasure cannot rewrite: '<key>: <why>'."""


def _read_landed(landing: Store, key: str, *, zipped: bool | None) -> tuple[bytes, bool]:
    """A landed file's text, and whether it was gzipped. `zipped` None: by its magic bytes."""
    import zlib

    body = landing.get(key)
    if zipped is None:
        zipped = body[:2] == b"\x1f\x8b"
    if not zipped:
        return body, False
    try:
        return gzip.decompress(body), True
    except (EOFError, OSError, zlib.error) as e:
        raise _Unreadable(f"{key}: not a readable gzip file ({e})") from None


def _rewrite_stream(landing: Store, key: str, theirs: _Theirs) -> int:
    text, zipped = _read_landed(landing, key, zipped=None)
    if not theirs.may_be_in(text):
        return 0
    kept, gone = _records_without(text, theirs, "firehose" if "/streams/firehose/" in f"/{key}" else "pipes")
    if gone:
        landing.put(key, gzip.compress(kept, mtime=0) if zipped else kept)
    return gone


def _records_without(text: bytes, theirs: _Theirs, envelope: str) -> tuple[bytes, int]:
    """A stream file (Records batches, JSON arrays, or Firehose records) without the consumer's
    records. Records and batches may follow one another with no newline: they are split as ingest
    splits them (a line holding two records, or two batches, is not one record)."""
    if envelope == "firehose":
        records = split_records(text, "firehose")
        kept = [raw for raw, _ in records if not theirs.line(raw)]
        return b"".join(raw + b"\n" for raw in kept), len(records) - len(kept)
    out, gone = [], 0
    for raw, doc in pipes_documents(text.removeprefix(BOM)):
        records = records_of(doc)
        if records is None:  # a record alone, or a document that does not read: as lines
            kept, went = _without(raw, theirs)
        else:
            ours = [r for r, (sent, _) in zip(records, pipes_entries(raw, doc), strict=True) if not theirs.line(sent)]
            kept = json_bytes({**doc, "Records": ours} if isinstance(doc, dict) else ours)
            went = len(records) - len(ours)
        out.append(kept)
        gone += went
    return b"\n".join(part for part in out if part.strip()), gone


def _rewrite_export(landing: Store, manifest_key: str, theirs: _Theirs, unreadable: list[str] | None) -> int:
    folder = manifest_key.rsplit("/", 1)[0]
    try:
        entries = [orjson.loads(line) for line in landing.get(manifest_key).splitlines() if line.strip()]
    except orjson.JSONDecodeError as e:
        raise _Unreadable(f"{manifest_key}: not a readable manifest ({e})") from None
    removed = 0
    for entry in entries:
        key = _landed(landing, entry["dataFileS3Key"], folder)
        if key is None:
            continue
        try:
            text, _ = _read_landed(landing, key, zipped=True)
        except _Unreadable as e:  # the export's other files are still rewritten
            if unreadable is None:
                raise
            unreadable.append(str(e))
            continue
        if not theirs.may_be_in(text):
            continue
        kept, gone = _without(text, theirs)
        if not gone:
            continue
        zipped = gzip.compress(kept, mtime=0)
        landing.put(key, zipped)
        entry["md5Checksum"] = base64.b64encode(hashlib.md5(zipped).digest()).decode()
        entry["etag"] = hashlib.md5(zipped).hexdigest()
        entry["itemCount"] -= gone
        removed += gone
    if removed:
        manifest = b"".join(orjson.dumps(e) + b"\n" for e in entries)
        landing.put(manifest_key, manifest)
        landing.put(f"{folder}/manifest-files.checksum", hashlib.md5(manifest).hexdigest().encode())
        summary_key = f"{folder}/manifest-summary.json"
        if landing.exists(summary_key):
            summary = orjson.loads(landing.get(summary_key))
            summary["itemCount"] = sum(e["itemCount"] for e in entries)
            text = orjson.dumps(summary)
            landing.put(summary_key, text)
            landing.put(f"{folder}/manifest-summary.checksum", hashlib.md5(text).hexdigest().encode())
    return removed


def _landed(landing: Store, listed: str, folder: str) -> str | None:
    """Where a listed data file is in this store (a mirror of the bucket, or beside the export)."""
    for candidate in (listed, f"{folder}/data/{listed.rsplit('/', 1)[-1]}"):
        if landing.exists(candidate):
            return candidate
    return None


# ---- lake -----------------------------------------------------------------------------------------

def _quarantine_predicate(lake: Lake, entity: str, tenant_id: str, consumer_id: str,
                          item_ids: set[str] = frozenset()):
    """Quarantined rows of the consumer: their consumer as ingest read it, one of their items by
    its id, or their original line read again (the item inside it, in any envelope)."""
    rows = scan(lake, "quarantine", entity, EqualTo("tenant_id", tenant_id),
                ("_export_id", "_line", "_item_id", "_consumer_id", "_raw"))
    if rows is None:
        return None
    theirs = _Theirs(entity, consumer_id, item_ids)
    consumer_field = bool(theirs.fields)  # Counselor rows name no consumer
    mine = pa.array([(consumer_field and c == consumer_id) or (i is not None and i in theirs.item_ids)
                     or theirs.line(raw) for c, i, raw in zip(
                         rows["_consumer_id"].to_pylist(), rows["_item_id"].to_pylist(), rows["_raw"].to_pylist(),
                         strict=True)], pa.bool_())
    hits = rows.filter(mine)
    if not hits.num_rows:
        return None
    pairs = sorted(set(zip(hits["_export_id"].to_pylist(), hits["_line"].to_pylist(), strict=True)))
    return And(EqualTo("tenant_id", tenant_id), any_of(And(EqualTo("_export_id", e), EqualTo("_line", n))
                                                       for e, n in pairs))


def any_of(expressions):
    """One Iceberg predicate matching any of `expressions` (at least one)."""
    return reduce(Or, expressions)


def _scrub(doc, ids: set[str]):
    if isinstance(doc, str):
        return "[erased]" if doc in ids else doc
    if isinstance(doc, list):
        return [_scrub(x, ids) for x in doc]
    if isinstance(doc, dict):
        return {k: _scrub(v, ids) for k, v in doc.items()}
    return doc


def _scrub_quality(quality: dict, entity: str, items: dict[str, set[str]]) -> dict:
    """A stored audit without the consumer's values. Results hold no values of a personal column
    (tenantlake.quality.results.redact), so what can be theirs is the unexpected values listed by
    an expectation on the entity's key column (a value equal to one of their items' ids of this
    entity is that item) or on a column referencing another entity's items (a payment's plan_id,
    checked against published Plans: one of their plans' ids). Nothing else is touched: an enum
    value in a value_set or a count is never theirs, whatever it happens to equal."""
    from tenantlake.contracts import ENTITIES
    from tenantlake.quality.results import VALUE_KEYS
    from tenantlake.quality.suites import COLUMN_KEYS

    contract = ENTITIES.get(entity)
    if contract is None or not any(items.values()):
        return quality
    key = contract.key.column
    for r in (quality.get("result") or {}).get("results") or []:
        kwargs = (r.get("expectation_config") or {}).get("kwargs") or {}
        ids = set(items.get(entity, ())) if key in {kwargs.get(k) for k in COLUMN_KEYS} else set()
        ids |= set(items.get(kwargs.get("entity"), ()))  # a reference check names the entity it refers to
        if not ids or not isinstance(r.get("result"), dict):
            continue
        for k in VALUE_KEYS:
            if k in r["result"]:
                r["result"][k] = _scrub(r["result"][k], ids)
    return quality


def scrub_batch_log(lake: Lake, tenant_id: str, items: dict[str, set[str]], run_id: str, workdir: str) -> int:
    """Rewrite the tenant's batch-log rows whose audit results list a value of the consumer's items
    (their ids, per entity). Drift holds attribute paths and counts only, never values."""
    if not any(items.values()):
        return 0
    found = scan(lake, "ops", BATCH_LOG, EqualTo("tenant_id", tenant_id))
    if found is None:
        return 0
    touched = []
    every = set().union(*items.values())
    for r in found.to_pylist():
        if not r.get("quality") or not any(i in r["quality"] for i in every):
            continue
        before = orjson.loads(r["quality"])
        after = _scrub_quality(orjson.loads(r["quality"]), r["entity"], items)
        if after != before:
            r["quality"] = orjson.dumps(after).decode()
            touched.append(r)
    if not touched:
        return 0
    lake.load("ops", BATCH_LOG).delete(And(EqualTo("tenant_id", tenant_id), any_of(
        And(EqualTo("export_id", r["export_id"]), EqualTo("run_id", r["run_id"])) for r in touched)))
    log_batches(lake, touched, run_id, workdir)
    return len(touched)


def consumer_items(lake: Lake, tenant_id: str, consumer_id: str, consumer_key: str) -> dict[str, set[str]]:
    """The ids of the consumer's items per entity, from raw (clear ids) and protected (keys)."""
    from tenantlake.contracts import ENTITIES

    out: dict[str, set[str]] = {}
    for entity, contract in ENTITIES.items():
        ref = contract.consumer_reference
        if ref is None:
            continue
        found: set[str] = set()
        for zone, column, value in (("raw", ref.column, consumer_id), ("protected", "consumer_key", consumer_key)):
            if zone == "protected" and entity == "Consumer":  # its key is the pseudonym itself
                continue
            rows = scan(lake, zone, entity, And(EqualTo("tenant_id", tenant_id), EqualTo(column, value)), ("id",))
            found |= set(rows["id"].to_pylist()) if rows is not None else set()
        out[entity] = found
    return out


@dataclass
class Erasure:
    tenant_id: str
    consumer_key: str
    requested_at: str
    completed_at: str | None = None
    removed: dict[str, int] = field(default_factory=dict)  # layer -> rows removed, by every run so far
    unreadable: list[str] = field(default_factory=list)  # landed files this run could not rewrite

    @property
    def found(self) -> bool:
        """Whether any run found anything of the consumer in any layer."""
        return any(self.removed.values())


def erase_consumer(lake: Lake, landing: Store, tenant_id: str, consumer_id: str, key: bytes, *,
                   warehouse_erase: Callable[[str, str, dict[str, set[str]]], dict[str, int]] | None = None,
                   run_id: str = "erase", workdir: str = "/tmp") -> Erasure:
    """Erase one consumer of one tenant from every layer (the module docstring lists the steps).
    A landed file that cannot be rewritten does not stop the other layers: it is named in the
    returned request's `unreadable`, and the request stays incomplete (a rerun retries it)."""
    from tenantlake.contracts import ENTITIES
    from tenantlake.pseudonyms import pseudonym

    if not consumer_id.strip():
        raise ErasureRefused("the consumer id is empty: an erasure names exactly one consumer")
    consumer_key = pseudonym(key, tenant_id, consumer_id)
    now = datetime.now(UTC)
    request = _record(lake, tenant_id, consumer_key, now, run_id, workdir)
    items = consumer_items(lake, tenant_id, consumer_id, consumer_key)
    removed: dict[str, int] = {}
    unreadable: list[str] = []
    removed["landing"] = erase_from_landing(landing, tenant_id, consumer_id, items, unreadable)
    for entity in ENTITIES:
        predicate = _quarantine_predicate(lake, entity, tenant_id, consumer_id, items.get(entity, set()))
        if predicate is not None:
            removed["quarantine"] = removed.get("quarantine", 0) + delete_rows(
                lake, "quarantine", entity, predicate, "erase", run_id)
    if warehouse_erase is not None:
        for layer, n in warehouse_erase(tenant_id, consumer_key, items).items():
            removed[f"warehouse.{layer}"] = n
    removed["quality_results"] = scrub_batch_log(lake, tenant_id, items, run_id, workdir)
    for zone in ("protected", "raw"):
        for entity, contract in ENTITIES.items():
            ref = contract.consumer_reference
            if ref is None:
                continue
            column, value = ("consumer_key", consumer_key) if zone == "protected" else (ref.column, consumer_id)
            removed[zone] = removed.get(zone, 0) + delete_rows(
                lake, zone, entity, And(EqualTo("tenant_id", tenant_id), EqualTo(column, value)), "erase", run_id)
    for zone in ENTITY_ZONES:
        for entity in ENTITIES:
            if lake.exists(zone, entity):
                forget_history(lake, zone, entity)
    if lake.exists("ops", BATCH_LOG):
        forget_history(lake, "ops", BATCH_LOG)
    # what an earlier run removed stays in the record: a rerun finds nothing there any more
    for layer, n in removed.items():
        request.removed[layer] = request.removed.get(layer, 0) + n
    request.unreadable = unreadable
    request.completed_at = None if unreadable else datetime.now(UTC).isoformat()
    _complete(lake, request, run_id, workdir)
    return request


def _record(lake: Lake, tenant_id: str, consumer_key: str, now: datetime, run_id: str, workdir: str) -> Erasure:
    """The request, recorded once (a rerun finds it, with what earlier runs removed, and carries on)."""
    if consumer_key in erased_keys(lake, {tenant_id})[tenant_id]:
        table = lake.table("ops", ERASURES, refresh=True)
        row = table.scan(row_filter=And(EqualTo("tenant_id", tenant_id), EqualTo("consumer_key", consumer_key))
                         ).to_arrow().to_pylist()[0]
        before = orjson.loads(row["removed"]) if row["removed"] else {}
        counts = {k: v for k, v in before.items() if isinstance(v, int)}
        return Erasure(tenant_id, consumer_key, str(row["requested_at"]), removed=counts)
    _append_erasures(lake, [{"tenant_id": tenant_id, "consumer_key": consumer_key, "requested_at": now,
                             "completed_at": None, "removed": None}], run_id, workdir)
    return Erasure(tenant_id, consumer_key, now.isoformat())


def _complete(lake: Lake, request: Erasure, run_id: str, workdir: str) -> None:
    """The request's record replaced: rows removed per layer by every run so far, and, while it
    is incomplete (completed_at null), the landed files that could not be rewritten."""
    table = lake.table("ops", ERASURES, refresh=True)
    table.delete(And(EqualTo("tenant_id", request.tenant_id), EqualTo("consumer_key", request.consumer_key)))
    removed = {**request.removed, **({"unreadable": request.unreadable} if request.unreadable else {})}
    _append_erasures(lake, [{"tenant_id": request.tenant_id, "consumer_key": request.consumer_key,
                             "requested_at": datetime.fromisoformat(request.requested_at),
                             "completed_at": datetime.fromisoformat(request.completed_at)
                             if request.completed_at else None,
                             "removed": orjson.dumps(removed).decode()}], run_id, workdir)


def _append_erasures(lake: Lake, rows: list[dict], run_id: str, workdir: str) -> None:
    import os
    import time

    import pyarrow.parquet as pq

    from tenantlake.lake.files import Placer
    from tenantlake.lake.publish import append_files, summary

    table = lake.table("ops", ERASURES, refresh=True)
    path = os.path.join(workdir, f"erasure-{time.monotonic_ns()}.parquet")
    pq.write_table(pa.Table.from_pylist(rows, schema=OPS_TABLES[ERASURES]), path)
    placed = Placer(table).place(path, rows[0]["tenant_id"], "erasure", "e")
    append_files(lake, "ops", ERASURES, [placed], summary("erasure-request", run_id, batches=len(rows)))


def offboard_tenant(lake: Lake, landing: Store, state: Store, tenant_id: str, *,
                    warehouse_remove: Callable[[str], dict[str, int]] | None = None,
                    revoke_key: Callable[[str], str] | None = None, run_id: str = "offboard") -> dict:
    """Remove every trace of a tenant (the module docstring lists the layers); returns the report,
    also kept as the tenant's tombstone."""
    report = {"tenant_id": tenant_id, "started_at": datetime.now(UTC).isoformat(), "completed_at": None,
              "removed": {}}
    if state.exists(tombstone_key(tenant_id)):  # a rerun after a kill: keep what was counted
        report = {**orjson.loads(state.get(tombstone_key(tenant_id))), "completed_at": None}
    state.put(tombstone_key(tenant_id), orjson.dumps(report))  # from now on, planning refuses the tenant
    removed = report["removed"]

    def count(layer: str, n: int) -> None:  # kept at once: a rerun after a kill still reports what went
        removed[layer] = removed.get(layer, 0) + n
        state.put(tombstone_key(tenant_id), orjson.dumps(report))

    tables = [(zone, name) for zone in ("raw", "quarantine", "protected", "ops") for name in lake.entities(zone)]
    for zone, name in tables:
        count(zone if zone != "ops" else f"ops.{name}",
              delete_rows(lake, zone, name, EqualTo("tenant_id", tenant_id), "offboard", run_id))
    count("landing", landing.delete_prefix(f"tenant={tenant_id}/"))
    if warehouse_remove is not None:
        for layer, n in warehouse_remove(tenant_id).items():
            count(f"warehouse.{layer}", n)
    count("ops_twin", _forget_in_ops_twin(state, tenant_id))
    for prefix in (f"_state/watermarks/tenant_id={tenant_id}/", f"_state/requests/tenant_id={tenant_id}/"):
        count("state", state.delete_prefix(prefix))
    count("run_summaries", _forget_in_run_summaries(state, tenant_id))
    if revoke_key is not None:
        report["key"] = revoke_key(tenant_id)
    for zone, name in tables:
        forget_history(lake, zone, name)
    report["completed_at"] = datetime.now(UTC).isoformat()
    state.put(tombstone_key(tenant_id), orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return report


def _forget_in_ops_twin(state: Store, tenant_id: str) -> int:
    """The tenant's rows out of the ops lake twin (`<lake>/_ops/*.parquet`): it is rewritten only
    by the next ops refresh, which may be an hour away."""
    from tenantlake.ops.tables import SCHEMAS, read_twin, write_twin

    gone = 0
    for name in SCHEMAS:
        table = read_twin(state, name)
        if table is None or "tenant_id" not in table.column_names:
            continue
        mine = pc.fill_null(pc.equal(table["tenant_id"], tenant_id), False)
        n = pc.sum(mine).as_py() or 0
        if n:
            write_twin(state, {name: table.filter(pc.invert(mine))})
            gone += n
    return gone


def _forget_in_run_summaries(state: Store, tenant_id: str) -> int:
    """Drop the tenant from every kept run summary (counts only, but they name it)."""
    changed = 0
    for key in state.list("_state/runs/"):
        if not key.endswith(".json"):
            continue
        doc = orjson.loads(state.get(key))
        hit = False
        for holder in ("tenants", "tables"):
            if isinstance(doc.get(holder), dict) and tenant_id in doc[holder]:
                del doc[holder][tenant_id]
                hit = True
        if isinstance(doc.get("failed"), list):
            kept = [f for f in doc["failed"] if not f.startswith(f"{tenant_id}/")]
            hit |= len(kept) != len(doc["failed"])
            doc["failed"] = kept
        if hit:
            state.put(key, orjson.dumps(doc, option=orjson.OPT_INDENT_2))
            changed += 1
    return changed


def erase(runtime, tenant_id: str, consumer_id: str) -> dict:
    """An erasure request as the command line and the tenant_lifecycle DAG run it: every layer,
    the warehouse included, and the warehouse's lake views pointed at what remains. Refused
    (ErasureRefused, nothing done) for an empty consumer id or an offboarded tenant; a landed file
    that could not be rewritten raises ErasureIncomplete once every other layer is erased."""
    import tempfile

    from tenantlake import loading

    if not consumer_id or not consumer_id.strip():
        raise ErasureRefused("the consumer id is empty: an erasure names exactly one consumer")
    if tenant_id in offboarded_tenants(runtime.state):  # before key_for, which would make a new key
        raise ErasureRefused(f"tenant {tenant_id} was offboarded: nothing of it is left to erase; "
                             "remove it from the registry")
    done = erase_consumer(runtime.lake, runtime.landing, tenant_id, consumer_id, runtime.key_for(tenant_id),
                          warehouse_erase=loading.warehouse_eraser(runtime),
                          workdir=tempfile.mkdtemp(prefix="tenantlake-erase-"))
    loading.register_lake(runtime)
    result = {"tenant_id": done.tenant_id, "consumer_key": done.consumer_key, "requested_at": done.requested_at,
              "completed_at": done.completed_at, "removed": done.removed}
    if done.unreadable:
        result["unreadable"] = done.unreadable
        raise ErasureIncomplete(
            f"{len(done.unreadable)} landed file(s) could not be rewritten, the request stays incomplete "
            f"(every other layer is erased; rerun once repaired or removed): {'; '.join(done.unreadable)}", result)
    if not done.found:
        result["warning"] = (f"nothing of consumer {done.consumer_key} (pseudonym) was found in any layer of "
                             f"{tenant_id}; the request is recorded, so later exports carrying it are filtered")
        log.warning("%s", result["warning"])
    return result


def offboard(runtime, tenant_id: str) -> dict:
    """Offboarding as the command line and the tenant_lifecycle DAG run it. Only a tenant the registry
    names (valid entry or not), or one offboarded before (a rerun), is offboarded: the id becomes a
    path in every layer, so a typo would remove nothing and report success, and an id holding a "/"
    (agency-002/table=Debt) reached into another tenant's landing."""
    from tenantlake import loading
    from tenantlake.onboarding import key_revoker
    from tenantlake.registry import TENANT_ID

    known = set(runtime.registry.by_id) | set(runtime.registry.invalid_by_id) | offboarded_tenants(runtime.state)
    if not re.fullmatch(TENANT_ID, tenant_id or "") or tenant_id not in known:
        raise OffboardRefused(f"{tenant_id!r} is not a tenant of the registry: offboard a tenant before removing "
                              "its entry (nothing was removed)")

    report = offboard_tenant(runtime.lake, runtime.landing, runtime.state, tenant_id,
                             warehouse_remove=loading.warehouse_remover(runtime), revoke_key=key_revoker(runtime))
    loading.register_lake(runtime)
    return report
