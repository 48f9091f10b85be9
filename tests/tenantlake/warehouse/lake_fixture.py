"""A lake for the warehouse's tests, made from landed exports with the project's decoder and privacy
projection only: raw and protected Parquet files per (tenant, entity, export) and the LoadBatch the
warehouse is handed for each. It stands in for the lake's publish (tested with the lake), so the
warehouse's tests depend on nothing but its own input: LoadBatches of protected files."""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tenantlake.contracts import ENTITIES
from tenantlake.formats.dynamodb_json import Source, decode_file
from tenantlake.formats.manifest import read_export
from tenantlake.lake.batches import LakeFile, LoadBatch
from tenantlake.privacy import protect
from tenantlake.storage import LocalStore


@dataclass
class TestLake:
    root: Path
    batches: list[LoadBatch] = field(default_factory=list)
    raw: dict[str, list[LakeFile]] = field(default_factory=dict)
    protected: dict[str, list[LakeFile]] = field(default_factory=dict)

    def add(self, tenant_id: str, entity: str, export_id: str, kind: str, rows: pa.Table, key_for) -> LoadBatch:
        """Publish one batch: its raw rows and their protected projection, one file each."""
        files = {}
        for zone, table in (("raw", rows), ("protected", protect(rows, ENTITIES[entity], key_for))):
            path = self.root / zone / entity / f"tenant_id={tenant_id}" / f"{export_id}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path)
            f = LakeFile(str(path), table.num_rows, path.stat().st_size)
            getattr(self, zone).setdefault(entity, []).append(f)
            files[zone] = f
        batch = LoadBatch(tenant_id, entity, export_id, kind, rows.num_rows, (files["protected"],))
        self.batches.append(batch)
        return batch

    def of(self, tenant_id: str | None = None, entity: str | None = None) -> list[LoadBatch]:
        return [b for b in self.batches if (tenant_id is None or b.tenant_id == tenant_id)
                and (entity is None or b.entity == entity)]


def decoded_export(landing: LocalStore, summary_key: str, tenant_id: str,
                   entity: str) -> tuple[str, str, pa.Table | None]:
    export = read_export(landing, summary_key)
    parts = []
    for f in export.files:
        src = Source(tenant_id, export.export_id, f.key, export.kind, export.export_time_us, export.view)
        decoded = decode_file(gzip.decompress(landing.get(f.path)), ENTITIES[entity], src)
        assert decoded.quarantine.num_rows == 0, f"{f.path}: the fixture's exports decode without defects"
        parts.append(decoded.rows)
    return export.export_id, export.kind, pa.concat_tables(parts) if parts else None


def lake_from_landing(home: Path, tenants, key_for) -> TestLake:
    """Every landed export of the tenants (registry entries), decoded and published."""
    landing = LocalStore(home / "landing")
    lake = TestLake(home / "testlake")
    for tenant in tenants:
        for entity in tenant.tables:
            for key in sorted(landing.list(f"tenant={tenant.tenant_id}/table={entity}/AWSDynamoDB/")):
                if key.endswith("/manifest-summary.json"):
                    export_id, kind, rows = decoded_export(landing, key, tenant.tenant_id, entity)
                    if rows is not None and rows.num_rows:  # the lake publishes no empty batch
                        lake.add(tenant.tenant_id, entity, export_id, kind, rows, key_for)
    return lake
