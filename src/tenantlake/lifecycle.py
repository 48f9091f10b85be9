"""A tenant's life: one consumer's erasure, offboarding, and what planning must refuse.

**Erasure** (GDPR / CCPA) of one consumer of one tenant, given the agency's own consumer id:
  1. the request is recorded by pseudonym (ops.erasures: no clear id is ever stored), so from this
     moment ingest drops the consumer's rows from any later export that still carries them;
  2. landing: every export data file and stream file of the tenant is rewritten without the lines
     of the consumer's items (the consumer itself, and every item whose consumerId is theirs), its
     manifest's MD5 and item counts updated, so the export still verifies;
  3. quarantine: rows whose item is theirs, or whose original line names them anywhere;
  4. the warehouse (every layer, SCD2 history included) through its own erase, then marts refresh;
  5. the batch log's audit results and drift scrubbed of their ids;
  6. protected and raw rows, through Iceberg deletes (raw last: it is where a rerun finds their
     items again);
  7. every snapshot older than those deletes expired and every file no longer referenced removed,
     so nothing erased stays readable through time travel or on disk;
  8. the request marked complete with the rows removed per layer.
Every step is idempotent and driven by (tenant, consumer id) alone, so a request killed at any
point completes when run again.

**Offboarding** removes every trace of a tenant: a tombstone first (planning refuses the tenant
from then on), then its partitions of every lake table, its landing prefix, the warehouse (the
load audit reduced to a record that it existed), its watermarks and export request ledger, its
run summaries' entries, and its pseudonym key (the local key file, or the secret in aws mode), so
any copy of a pseudonym left elsewhere can no longer be linked; then history is forgotten as for an
erasure. The tombstone holds the report of what was removed, by layer.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import reduce

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import And, EqualTo, In, Or

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


# ---- landing ------------------------------------------------------------------------------------

def _names(doc) -> set[str]:
    """The ids a landed line ties to a consumer: the item's own id and its consumerId, in any
    envelope (full export Item, incremental Keys/NewImage/OldImage, stream record dynamodb.*)."""
    out = set()
    images = []
    if isinstance(doc, dict):
        images += [doc.get(k) for k in ("Item", "Keys", "NewImage", "OldImage")]
        body = doc.get("dynamodb")
        if isinstance(body, dict):
            images += [body.get(k) for k in ("Keys", "NewImage", "OldImage")]
    for image in images:
        if isinstance(image, dict):
            for attr in ("id", "consumerId"):
                v = image.get(attr)
                if isinstance(v, dict) and isinstance(v.get("S"), str):
                    out.add(v["S"])
    return out


def _without(text: bytes, consumer_id: str) -> tuple[bytes, int]:
    """JSON lines without the consumer's lines; and how many went."""
    kept, gone = [], 0
    for line in text.splitlines(keepends=True):
        try:
            mine = consumer_id in _names(orjson.loads(line))
        except orjson.JSONDecodeError:
            mine = consumer_id.encode() in line  # a line we cannot read still must not keep them
        if mine:
            gone += 1
        else:
            kept.append(line)
    return b"".join(kept), gone


def erase_from_landing(landing: Store, tenant_id: str, consumer_id: str) -> int:
    """Rewrite the tenant's landed export files and stream files without the consumer's lines,
    keeping each export verifiable (manifest MD5s and item counts updated). Returns lines removed."""
    removed = 0
    prefix = f"tenant={tenant_id}/"
    for key in landing.list(prefix):
        if key.endswith("/manifest-files.json"):
            removed += _rewrite_export(landing, key, consumer_id)
        elif "/streams/" in key:
            body = landing.get(key)
            zipped = body[:2] == b"\x1f\x8b"
            text = gzip.decompress(body) if zipped else body
            if consumer_id.encode() not in text:
                continue
            kept, gone = _records_without(text, consumer_id)
            if gone:
                landing.put(key, gzip.compress(kept, mtime=0) if zipped else kept)
                removed += gone
    return removed


def _records_without(text: bytes, consumer_id: str) -> tuple[bytes, int]:
    """A stream file (a Records batch, a JSON array, or JSON lines) without the consumer's records."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _without(text, consumer_id)
    records = doc.get("Records") if isinstance(doc, dict) else doc
    if not isinstance(records, list):
        return _without(text, consumer_id)
    kept = [r for r in records if consumer_id not in _names(r)]
    body = {**doc, "Records": kept} if isinstance(doc, dict) else kept
    return orjson.dumps(body), len(records) - len(kept)


def _rewrite_export(landing: Store, manifest_key: str, consumer_id: str) -> int:
    folder = manifest_key.rsplit("/", 1)[0]
    entries = [orjson.loads(line) for line in landing.get(manifest_key).splitlines() if line.strip()]
    removed = 0
    for entry in entries:
        key = _landed(landing, entry["dataFileS3Key"], folder)
        if key is None:
            continue
        body = landing.get(key)
        text = gzip.decompress(body)
        if consumer_id.encode() not in text:
            continue
        kept, gone = _without(text, consumer_id)
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

def _quarantine_predicate(lake: Lake, entity: str, tenant_id: str, consumer_id: str):
    """Quarantined rows of the consumer: by the ids read at ingest, or by their line naming them."""
    rows = scan(lake, "quarantine", entity, EqualTo("tenant_id", tenant_id),
                ("_export_id", "_line", "_item_id", "_consumer_id", "_raw"))
    if rows is None:
        return None
    mine = pc.or_(pc.fill_null(pc.equal(rows["_consumer_id"], consumer_id), False),
                  pc.fill_null(pc.equal(rows["_item_id"], consumer_id), False))
    named = pa.array([consumer_id.encode() in (raw or b"") for raw in rows["_raw"].to_pylist()], pa.bool_())
    hits = rows.filter(pc.or_(mine, named))
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


def scrub_batch_log(lake: Lake, tenant_id: str, ids: set[str], run_id: str, workdir: str) -> int:
    """Rewrite the tenant's batch-log rows whose audit results or drift name one of `ids`."""
    found = scan(lake, "ops", BATCH_LOG, EqualTo("tenant_id", tenant_id)) if ids else None
    if found is None:
        return 0
    rows = found.to_pylist()
    touched = [r for r in rows if any(i in (r.get("quality") or "") or i in (r.get("drift") or "") for i in ids)]
    if not touched:
        return 0
    for r in touched:
        for column in ("quality", "drift"):
            if r[column]:
                r[column] = orjson.dumps(_scrub(orjson.loads(r[column]), ids)).decode()
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
    removed: dict[str, int] = field(default_factory=dict)  # layer -> rows removed


def erase_consumer(lake: Lake, landing: Store, tenant_id: str, consumer_id: str, key: bytes, *,
                   warehouse_erase: Callable[[str, str, dict[str, set[str]]], dict[str, int]] | None = None,
                   run_id: str = "erase", workdir: str = "/tmp") -> Erasure:
    """Erase one consumer of one tenant from every layer (the module docstring lists the steps)."""
    from tenantlake.contracts import ENTITIES
    from tenantlake.pseudonyms import pseudonym

    consumer_key = pseudonym(key, tenant_id, consumer_id)
    now = datetime.now(UTC)
    request = _record(lake, tenant_id, consumer_key, now, run_id, workdir)
    items = consumer_items(lake, tenant_id, consumer_id, consumer_key)
    ids = {consumer_id} | {i for found in items.values() for i in found}
    removed: dict[str, int] = {}
    removed["landing"] = erase_from_landing(landing, tenant_id, consumer_id)
    for entity in ENTITIES:
        predicate = _quarantine_predicate(lake, entity, tenant_id, consumer_id)
        if predicate is not None:
            removed["quarantine"] = removed.get("quarantine", 0) + delete_rows(
                lake, "quarantine", entity, predicate, "erase", run_id)
    if warehouse_erase is not None:
        for layer, n in warehouse_erase(tenant_id, consumer_key, items).items():
            removed[f"warehouse.{layer}"] = n
    removed["quality_results"] = scrub_batch_log(lake, tenant_id, ids, run_id, workdir)
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
    request.removed, request.completed_at = removed, datetime.now(UTC).isoformat()
    _complete(lake, request, run_id, workdir)
    return request


def _record(lake: Lake, tenant_id: str, consumer_key: str, now: datetime, run_id: str, workdir: str) -> Erasure:
    """The request, recorded once (a rerun finds it and carries on)."""
    if consumer_key in erased_keys(lake, {tenant_id})[tenant_id]:
        table = lake.table("ops", ERASURES, refresh=True)
        row = table.scan(row_filter=And(EqualTo("tenant_id", tenant_id), EqualTo("consumer_key", consumer_key))
                         ).to_arrow().to_pylist()[0]
        return Erasure(tenant_id, consumer_key, str(row["requested_at"]))
    _append_erasures(lake, [{"tenant_id": tenant_id, "consumer_key": consumer_key, "requested_at": now,
                             "completed_at": None, "removed": None}], run_id, workdir)
    return Erasure(tenant_id, consumer_key, now.isoformat())


def _complete(lake: Lake, request: Erasure, run_id: str, workdir: str) -> None:
    table = lake.table("ops", ERASURES, refresh=True)
    table.delete(And(EqualTo("tenant_id", request.tenant_id), EqualTo("consumer_key", request.consumer_key)))
    _append_erasures(lake, [{"tenant_id": request.tenant_id, "consumer_key": request.consumer_key,
                             "requested_at": datetime.fromisoformat(request.requested_at),
                             "completed_at": datetime.fromisoformat(request.completed_at),
                             "removed": orjson.dumps(request.removed).decode()}], run_id, workdir)


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
    the warehouse included, and the warehouse's lake views pointed at what remains."""
    import tempfile

    from tenantlake import loading

    done = erase_consumer(runtime.lake, runtime.landing, tenant_id, consumer_id, runtime.key_for(tenant_id),
                          warehouse_erase=loading.warehouse_eraser(runtime),
                          workdir=tempfile.mkdtemp(prefix="tenantlake-erase-"))
    loading.register_lake(runtime)
    return {"tenant_id": done.tenant_id, "consumer_key": done.consumer_key, "requested_at": done.requested_at,
            "completed_at": done.completed_at, "removed": done.removed}


def offboard(runtime, tenant_id: str) -> dict:
    """Offboarding as the command line and the tenant_lifecycle DAG run it."""
    from tenantlake import loading
    from tenantlake.onboarding import key_revoker

    report = offboard_tenant(runtime.lake, runtime.landing, runtime.state, tenant_id,
                             warehouse_remove=loading.warehouse_remover(runtime), revoke_key=key_revoker(runtime))
    loading.register_lake(runtime)
    return report
