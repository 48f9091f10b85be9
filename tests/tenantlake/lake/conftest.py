"""An empty Iceberg lake per test (SQLite catalog under tmp_path), and batches written by hand."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tenantlake.contracts import ENTITIES
from tenantlake.formats.rows import lake_schema
from tenantlake.lake import Lake, LakeConfig, open_catalog
from tenantlake.lake.publish import StagedBatch
from tenantlake.privacy import protect

KEY = b"k" * 32


@pytest.fixture
def lake(tmp_path) -> Lake:
    catalog = open_catalog("sql", uri=f"sqlite:///{tmp_path}/catalog/iceberg.db", warehouse=str(tmp_path / "lake"))
    return Lake(catalog, LakeConfig(str(tmp_path / "lake")))


def debt_rows(tenant_id: str, export_id: str, ids: list[str], day: int = 1, op: str = "snapshot",
              balance: str = "10.00") -> pa.Table:
    from decimal import Decimal

    rows = [{"tenant_id": tenant_id, "id": i, "consumer_id": f"c-{i}", "balance": Decimal(balance), "_op": op,
             "_event_ts": datetime(2026, 11, day, 12, tzinfo=UTC), "_export_id": export_id,
             "_source_file": f"{export_id}/data/x.json.gz", "_line": n + 1} for n, i in enumerate(ids)]
    return pa.Table.from_pylist(rows, schema=lake_schema(ENTITIES["Debt"]))


def staged(tmp_path, table: pa.Table, kind: str = "FULL_EXPORT") -> StagedBatch:
    """A batch as ingest hands it to a publication: one raw and one protected local file."""
    tenant_id, export_id = table["tenant_id"][0].as_py(), table["_export_id"][0].as_py()
    folder = tmp_path / "staged"
    folder.mkdir(exist_ok=True)
    raw = str(folder / f"{tenant_id}-{export_id}-{os.urandom(4).hex()}.parquet")
    pq.write_table(table, raw)
    prot = raw + ".protected.parquet"
    pq.write_table(protect(table, ENTITIES["Debt"], lambda t: KEY), prot)
    return StagedBatch(tenant_id, "Debt", export_id, kind, f"{export_id}/manifest-summary.json", table.num_rows,
                       0, [raw], [prot], None, table.num_rows)
