"""Quality-gate throughput, side by side: the Debt suite over the same 1M Debt rows.

    .venv/bin/python benchmarks/quality_throughput.py          # needs the ingest benchmark's data

  ours   tenantlake.quality.audit: only the columns the suite reads, decimals as float64 for the
         audit (the lake keeps exact decimals), one GX validation
  plain  the same suite through GX on the whole table as pandas, decimals as Python Decimal
         objects (object dtype): what table.to_pandas() gives a new user
Prints rows/s for each, the ratio, and where our time goes (frame building vs GX).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def staged_parts(data: Path, summary_key: str, out: Path) -> list[str]:
    """Decode the export once (gate off) and return its Parquet parts."""
    from tenantlake.ingest import ingest_export
    from tenantlake.lake import commits
    from tenantlake.registry import load_registry
    from tenantlake.storage import LocalStore

    tenant = load_registry().tenants[0]
    lake = LocalStore(out)
    if not commits(lake, "Debt", tenant.tenant_id):
        ingest_export(LocalStore(data), summary_key, lake, tenant_id=tenant.tenant_id, entity="Debt", tenant=tenant,
                      run_id="bench", workers=2, audit=False)
    return [str(lake.path(f["key"])) for c in commits(lake, "Debt", tenant.tenant_id) for f in c.files]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "tenantlake-bench" / "debt-1000000-8")
    args = p.parse_args()
    if not (args.data / "summary-key.txt").exists():
        raise SystemExit(f"{args.data}: run benchmarks/ingest_throughput.py first (it generates the export)")
    warnings.simplefilter("ignore")
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tenantlake import quality

    parts = staged_parts(args.data, (args.data / "summary-key.txt").read_text(), args.data.parent / "quality-lake")
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
    params = {"$tenant_id": "agency-001", "$expected_rows": rows, "$max_time": "2026-11-02T00:00:00+00:00",
              "$max_date": "2026-11-02"}
    suite = quality.load_suite("Debt", quality.suites_folder())
    n_exp = len(suite["expectations"])
    quality._context()  # GX start-up is paid once per process, by either way

    t = time.perf_counter()
    frame = quality.frame(parts, quality._columns(quality.resolve_suite("Debt", params, "FULL_EXPORT")))
    t_frame = time.perf_counter() - t
    t = time.perf_counter()
    ours = quality.audit("Debt", parts, params, "FULL_EXPORT")
    t_ours = time.perf_counter() - t
    del frame

    t = time.perf_counter()
    table = pa.concat_tables([pq.read_table(p) for p in parts])
    df = table.to_pandas()  # decimals arrive as Decimal objects
    df["_row"] = range(len(df))
    ctx, batch = quality._context()
    gx_suite = quality._gx_suite("Debt", quality.resolve_suite("Debt", params, "FULL_EXPORT"), "Debt.json")
    plain = batch.get_batch(batch_parameters={"dataframe": df}).validate(
        gx_suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["_row"]})
    t_plain = time.perf_counter() - t

    assert ours.failed == [] and plain.success is not None
    print(f"Debt suite: {n_exp} expectations over {rows:,} rows")
    print(f"{'way':6} {'seconds':>8} {'rows/s':>10}")
    print(f"{'ours':6} {t_ours:8.2f} {rows / t_ours:10,.0f}   (of which building the frame {t_frame:.2f}s)")
    print(f"{'plain':6} {t_plain:8.2f} {rows / t_plain:10,.0f}")
    print(f"ratio ours / plain: {t_plain / t_ours:.2f}x")


if __name__ == "__main__":
    main()
