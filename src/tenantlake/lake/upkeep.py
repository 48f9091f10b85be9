"""The lake's scheduled upkeep (the lake_maintenance DAG, `tenantlake maintain`): columns promoted
into the contracts filled from `_extra`, every table of every zone compacted, its old snapshots
expired and its orphan files removed, with the figures that show it worked (files before and after)."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from tenantlake.lake.catalog import ZONES, Lake
from tenantlake.lake.maintenance import compact, expire, remove_orphans


def upkeep(lake: Lake, *, min_files: int = 8, retention_hours: float = 72.0, zones=ZONES) -> dict:
    """Fill promoted columns, compact, expire and clean every table; returns the figures per table."""
    from tenantlake.contracts import ENTITIES
    from tenantlake.lake.evolve import promote

    workdir = tempfile.mkdtemp(prefix="tenantlake-upkeep-")
    older_than = datetime.now(UTC) - timedelta(hours=retention_hours)
    out = {}
    for entity in ENTITIES:  # a column declared since the last upkeep is filled from _extra first
        for zone, files in promote(lake, entity, workdir=workdir).items():
            if files:
                out[f"{lake.namespace(zone)}.{entity.lower()} promotion"] = {"files_rewritten": files}
    for zone in zones:
        for name in lake.entities(zone):
            done = compact(lake, zone, name, min_files=min_files, workdir=workdir)
            expired = expire(lake, zone, name, older_than)
            orphans = remove_orphans(lake.load(zone, name))
            figures = asdict(done)
            out[figures["table"]] = {**figures, "snapshots_expired": expired, "orphans_removed": orphans}
    return out
