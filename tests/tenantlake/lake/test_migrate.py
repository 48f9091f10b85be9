"""The former hive-partitioned lake moves into the Iceberg tables whole, checked by rows and sums."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pyarrow as pa

from tenantlake.lake.hive import BatchKey, Commit, parquet_bytes, publish
from tenantlake.lake.migrate import migrate
from tenantlake.lake.read import read
from tenantlake.storage import LocalStore
from tests.tenantlake.lake.conftest import KEY, debt_rows


def former_lake(root) -> LocalStore:
    """Two tenants' Debt batches, published the way the former lake did (commit markers)."""
    store = LocalStore(root)
    batches = [("agency-001", "e1", ["d1", "d2"], "10.50"), ("agency-001", "e2", ["d3"], "7.25"),
               ("agency-002", "e3", ["x1"], "100.00")]
    for tenant, export, ids, balance in batches:
        table = debt_rows(tenant, export, ids, balance=balance)
        if export == "e1":  # undeclared attributes as the former lake kept them: plain JSON
            extra = [orjson.dumps({"riskScore": "712", "flags": ["a", "b"]}).decode(), None]
            table = table.set_column(table.column_names.index("_extra"), "_extra", pa.array(extra, pa.string()))
        key = BatchKey(tenant, "Debt", export, "2026-11-01")
        store.put(f"staging/r/{export}/part-00000.parquet", parquet_bytes(table))
        commit = Commit(tenant, "Debt", export, "2026-11-01", "FULL_EXPORT", f"{export}/manifest-summary.json",
                        table.num_rows, 0)
        publish(store, key, commit, [{"key": f"staging/r/{export}/part-00000.parquet", "rows": table.num_rows,
                                      "bytes": 1}], None)
    # a batch that never committed (no marker) must not move
    store.put("raw/Debt/tenant_id=agency-001/export_date=2026-11-01/e9-part-00000.parquet",
              parquet_bytes(debt_rows("agency-001", "e9", ["never"])))
    return store


def test_every_committed_batch_moves_and_the_figures_match(lake, tmp_path):
    old = former_lake(tmp_path / "former")
    done = migrate(old, lake, lambda t: KEY, entities=["Debt"])
    assert done.mismatches == [] and done.batches == 3
    a = read(lake, "raw", "Debt", "agency-001")
    assert sorted(a["id"].to_pylist()) == ["d1", "d2", "d3"]  # not "never"
    assert sum(a["balance"].to_pylist()) == Decimal("10.50") * 2 + Decimal("7.25")  # by hand
    assert done.per_table[("agency-002", "Debt")] == {"rows": 1, "balance": "100.00", "apr": "0", "minimum_payment": "0"}
    extra = [orjson.loads(e) for e in a["_extra"].to_pylist() if e]
    assert extra == [{"flags": {"L": [{"S": "a"}, {"S": "b"}]}, "riskScore": {"S": "712"}}]
    assert read(lake, "protected", "Debt").num_rows == 4
    again = migrate(old, lake, lambda t: KEY, entities=["Debt"])  # interrupted or repeated: nothing twice
    assert again.replayed == 3 and again.batches == 0 and again.mismatches == []
