"""What the pipeline costs, per batch, per (tenant, table) and per tenant and month.

Three parts, each from the batch log and a price in config/prices.yaml:

  export   a published batch's export, billed by DynamoDB per GB of its billedSizeBytes, at the
           FULL or INCREMENTAL price. Stream batches (Firehose / Pipes files) have no export: what
           the tenant's stream costs is billed in its own account and not estimated here.
  storage  the Parquet bytes the batches wrote to raw and protected, held in S3 Standard: a month
           is charged for everything written up to its end (or up to now, for the current month)
           as if held the whole month. It overstates a growing lake a little and ignores
           compaction, expiry and deletes, which the batch log does not record.
  load     each tenant_exports run that published rows triggers one warehouse load; Redshift
           Serverless bills at least its minimum charge at the workgroup's base capacity for it.
           The run's minimum charge is shared among its batches by rows. It is a floor: a load
           running past the minimum costs more (the load's own duration is not recorded yet).

Every published batch is counted once (a replay is not logged again); failed attempts cost
nothing here, since their export is billed once, when its retry publishes it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from tenantlake.ops.config import Prices

# The units each formula needs; config.Prices.price refuses a price quoted in another.
PER_GB = "USD per GB"
PER_GB_MONTH = "USD per GB-month"
PER_RPU_HOUR = "USD per RPU-hour"
SECONDS = "seconds"
SECONDS_PER_HOUR = 3600  # a unit conversion, not a price
EXPORT_PRICES = {"FULL_EXPORT": "dynamodb_export_full", "INCREMENTAL_EXPORT": "dynamodb_export_incremental"}

# The batch log's columns the estimates read.
BATCH_COLUMNS = ("tenant_id", "entity", "export_id", "kind", "run_id", "outcome", "rows", "bytes_exported",
                 "bytes_stored", "logged_at")

TENANT_COST_MONTHLY_SCHEMA = pa.schema([
    pa.field("tenant_id", pa.string(), nullable=False),
    pa.field("month", pa.date32(), nullable=False),  # the month's first day (UTC)
    pa.field("batches", pa.int64()),  # published in the month
    pa.field("rows_loaded", pa.int64()),
    pa.field("bytes_exported", pa.int64()),  # billed export bytes of the month's batches
    pa.field("export_usd", pa.float64()),
    pa.field("bytes_stored", pa.int64()),  # Parquet bytes written up to the month's end (or now)
    pa.field("storage_usd", pa.float64()),
    pa.field("load_runs", pa.int64()),  # tenant_exports runs the tenant published rows in
    pa.field("load_usd", pa.float64()),
    pa.field("total_usd", pa.float64()),
    pa.field("prices_read", pa.date32()),  # the day the oldest price used was read
    pa.field("computed_at", pa.timestamp("us", tz="UTC")),
])


def load_run_usd(prices: Prices) -> float:
    """What one warehouse load costs at least: the minimum charge at the base capacity."""
    return (prices.price("redshift_serverless_compute", PER_RPU_HOUR) * prices.deployment.warehouse_base_rpu
            * prices.price("redshift_serverless_minimum_charge", SECONDS) / SECONDS_PER_HOUR)


def batch_costs(batches: pa.Table, prices: Prices) -> pa.Table:
    """The published batches of a batch-log extract (BATCH_COLUMNS), each with its `export_usd`
    and `load_usd`."""
    published = batches.filter(pc.equal(batches["outcome"], "published"))
    published = published.set_column(published.schema.get_field_index("rows"), "rows",
                                     pc.fill_null(published["rows"], 0))
    # A batch's share of its run's load, by rows (a join reorders rows, so it comes first).
    published = published.join(published.group_by("run_id").aggregate([("rows", "sum")]), "run_id")
    share = pc.if_else(pc.greater(published["rows_sum"], 0),
                       pc.divide(pc.cast(published["rows"], pa.float64()),
                                 pc.cast(published["rows_sum"], pa.float64())), 0.0)
    kind = published["kind"]
    per_gb = pc.if_else(pc.equal(kind, "FULL_EXPORT"), prices.price(EXPORT_PRICES["FULL_EXPORT"], PER_GB),
                        pc.if_else(pc.equal(kind, "INCREMENTAL_EXPORT"),
                                   prices.price(EXPORT_PRICES["INCREMENTAL_EXPORT"], PER_GB), 0.0))
    gb_exported = pc.divide(pc.cast(pc.fill_null(published["bytes_exported"], 0), pa.float64()),
                            float(prices.bytes_per_gb))
    return (published.drop_columns(["rows_sum"])
            .append_column("export_usd", pc.multiply(gb_exported, pc.fill_null(per_gb, 0.0)))
            .append_column("load_usd", pc.multiply(share, load_run_usd(prices))))


def storage_usd(bytes_stored: int, prices: Prices) -> float:
    """A month of S3 Standard for that many bytes."""
    return bytes_stored / prices.bytes_per_gb * prices.price("s3_standard_storage", PER_GB_MONTH)


def month_start(at: datetime) -> date:
    return date(at.year, at.month, 1)


def _next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def tenant_cost_monthly(costed: pa.Table, prices: Prices, now: datetime) -> pa.Table:
    """Cost per tenant per month (TENANT_COST_MONTHLY_SCHEMA) from `batch_costs`' output: every
    month from the tenant's first published batch up to now, months without batches included
    (their storage is still paid)."""
    per: dict[tuple[str, date], dict] = {}
    first: dict[str, date] = {}
    for r in costed.select(["tenant_id", "run_id", "rows", "bytes_exported", "bytes_stored", "logged_at",
                            "export_usd", "load_usd"]).to_pylist():
        month = month_start(r["logged_at"])
        m = per.setdefault((r["tenant_id"], month), {"batches": 0, "rows_loaded": 0, "bytes_exported": 0,
                                                      "export_usd": 0.0, "stored_in_month": 0, "runs": set(),
                                                      "load_usd": 0.0})
        m["batches"] += 1
        m["rows_loaded"] += r["rows"] or 0
        m["bytes_exported"] += r["bytes_exported"] or 0
        m["export_usd"] += r["export_usd"]
        m["stored_in_month"] += r["bytes_stored"] or 0
        if r["rows"]:
            m["runs"].add(r["run_id"])
        m["load_usd"] += r["load_usd"]
        first[r["tenant_id"]] = min(first.get(r["tenant_id"], month), month)
    rows, last = [], month_start(now)
    for tenant_id in sorted(first):
        stored, month = 0, first[tenant_id]
        while month <= last:
            m = per.get((tenant_id, month), {"batches": 0, "rows_loaded": 0, "bytes_exported": 0, "export_usd": 0.0,
                                             "stored_in_month": 0, "runs": set(), "load_usd": 0.0})
            stored += m["stored_in_month"]
            storage = storage_usd(stored, prices)
            rows.append({"tenant_id": tenant_id, "month": month, "batches": m["batches"],
                         "rows_loaded": m["rows_loaded"], "bytes_exported": m["bytes_exported"],
                         "export_usd": m["export_usd"], "bytes_stored": stored, "storage_usd": storage,
                         "load_runs": len(m["runs"]), "load_usd": m["load_usd"],
                         "total_usd": m["export_usd"] + storage + m["load_usd"],
                         "prices_read": prices.oldest_read, "computed_at": now})
            month = _next_month(month)
    return pa.Table.from_pylist(rows, schema=TENANT_COST_MONTHLY_SCHEMA)


def cost_per_month(costed: pa.Table, prices: Prices, now: datetime,
                   days: int = 30) -> dict[tuple[str, str], float]:
    """Each (tenant, table)'s cost over the last `days` days, as a monthly rate: the export and load
    of its batches logged in that span, and a month of storage for everything it has written."""
    since = now - timedelta(days=days)
    out: dict[tuple[str, str], float] = {}
    for r in costed.select(["tenant_id", "entity", "bytes_stored", "logged_at", "export_usd",
                            "load_usd"]).to_pylist():
        key = (r["tenant_id"], r["entity"])
        recent = r["logged_at"] is not None and r["logged_at"] >= since
        out[key] = (out.get(key, 0.0) + storage_usd(r["bytes_stored"] or 0, prices)
                    + (r["export_usd"] + r["load_usd"] if recent else 0.0))
    return out


def utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
