"""The drift summary: what each agency's data carried that the contracts do not declare.

Per (tenant, entity, attribute path, DynamoDB type, what): how many rows showed it and when it was
first and last seen, summed from the batch log (each published batch records the drift its
decoder saw: tenantlake.formats.drift). It is what a data engineer reads before promoting an
attribute into the contract; the warehouse keeps it as ops.drift_summary and the demo report shows it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pyarrow as pa

DRIFT_SUMMARY_SCHEMA = pa.schema([
    pa.field("tenant_id", pa.string()),
    pa.field("entity", pa.string()),
    pa.field("path", pa.string()),  # e.g. riskScore, bureau.history, concessions[].waived
    pa.field("dynamodb_type", pa.string()),  # as sent (N, M, L ...), or S->N for a coercion
    pa.field("what", pa.string()),  # new_attribute | new_field | coerced
    pa.field("rows", pa.int64()),
    pa.field("batches", pa.int64()),
    pa.field("first_seen", pa.timestamp("us", tz="UTC")),
    pa.field("last_seen", pa.timestamp("us", tz="UTC")),
])


def drift_summary(batch_log: pa.Table | None) -> pa.Table:
    """The summary from the batch log's rows (published batches' `drift` JSON)."""
    if batch_log is None or not batch_log.num_rows:
        return DRIFT_SUMMARY_SCHEMA.empty_table()
    acc: dict[tuple, list] = {}
    for tenant, entity, outcome, text in zip(*(batch_log[c].to_pylist() for c in ("tenant_id", "entity", "outcome",
                                                                                  "drift")), strict=True):
        if outcome != "published" or not text:
            continue
        for d in orjson.loads(text):
            key = (tenant, entity, d.get("path"), d.get("type"), d.get("what"))
            first, last = d.get("first_us"), d.get("last_us")
            seen = acc.setdefault(key, [0, 0, first, last])
            seen[0] += int(d.get("rows") or 0)
            seen[1] += 1
            seen[2] = min(x for x in (seen[2], first) if x is not None) if (seen[2], first) != (None, None) else None
            seen[3] = max(x for x in (seen[3], last) if x is not None) if (seen[3], last) != (None, None) else None

    def when(us):
        return None if us is None else datetime.fromtimestamp(us / 1e6, UTC)

    rows = [{"tenant_id": k[0], "entity": k[1], "path": k[2], "dynamodb_type": k[3], "what": k[4], "rows": v[0],
             "batches": v[1], "first_seen": when(v[2]), "last_seen": when(v[3])} for k, v in sorted(acc.items())]
    return pa.Table.from_pylist(rows, schema=DRIFT_SUMMARY_SCHEMA)
