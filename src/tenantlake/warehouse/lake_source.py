"""What a warehouse_load run is handed from the lake: per entity, the batches the protected zone
published since the warehouse's cursor (ops.load_cursor), and the current files of the raw and
protected tables (for lake.* and lake_protected.* on the embedded default).

The lake's own readers do the work (tenantlake.lake.read: files from Iceberg snapshots, never from
folder listings); this module only asks them for what the warehouse has not loaded yet. When the
DAG hands the batches in itself, it calls the same two functions.
"""

from __future__ import annotations

from tenantlake.contracts import ENTITIES
from tenantlake.lake.batches import LakeFile, LoadBatch


def new_batches(lake, warehouse, entities=tuple(ENTITIES)) -> tuple[list[LoadBatch], dict[str, int]]:
    """The batches published after each entity's cursor, and the snapshot to move each cursor to."""
    from tenantlake.lake.read import new_batches as published_after

    cursors = dict(warehouse._fetch("SELECT entity, snapshot_id FROM ops.load_cursor"))
    batches: list[LoadBatch] = []
    moved: dict[str, int] = {}
    for entity in entities:
        found, snapshot = published_after(lake, entity, cursors.get(entity))
        batches += found
        if snapshot is not None and snapshot != cursors.get(entity):
            moved[entity] = snapshot
    return batches, moved


def current_files(lake, entities=tuple(ENTITIES)) -> tuple[dict[str, list[LakeFile]], dict[str, list[LakeFile]]]:
    """The raw and protected tables' files in their current snapshots."""
    from tenantlake.lake.read import current_files as files

    return ({e: files(lake, "raw", e) for e in entities}, {e: files(lake, "protected", e) for e in entities})


def all_batches(lake, tenant_id: str, entities=tuple(ENTITIES)) -> list[LoadBatch]:
    """Every batch of one tenant in the protected zone's current snapshot (a reload)."""
    from tenantlake.lake.read import new_batches as published_after

    out = []
    for entity in entities:
        found, _ = published_after(lake, entity, None)
        out += [b for b in found if b.tenant_id == tenant_id]
    return out
