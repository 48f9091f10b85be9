"""The drift summary, summed from a hand-written batch log: per tenant, entity, path, type and what,
rows add up, batches count, first and last seen widen; failed batches do not count."""

from datetime import UTC, datetime

import orjson
import pyarrow as pa

from tenantlake.ops.drift import drift_summary

US = 1_000_000


def batch(tenant, entity, outcome, drift):
    return {"tenant_id": tenant, "entity": entity, "outcome": outcome,
            "drift": orjson.dumps(drift).decode() if drift is not None else None}


def test_drift_sums_across_batches_per_tenant_and_path():
    log = pa.Table.from_pylist([
        batch("agency-001", "Debt", "published", [
            {"path": "bureau.history", "type": "L", "what": "new_field", "rows": 30, "first_us": 10 * US, "last_us": 20 * US},
            {"path": "apr", "type": "S->N", "what": "coerced", "rows": 2, "first_us": 15 * US, "last_us": 15 * US}]),
        batch("agency-001", "Debt", "published", [
            {"path": "bureau.history", "type": "L", "what": "new_field", "rows": 5, "first_us": 5 * US, "last_us": 8 * US}]),
        batch("agency-001", "Debt", "failed", [
            {"path": "bureau.history", "type": "L", "what": "new_field", "rows": 99, "first_us": 1 * US, "last_us": 99 * US}]),
        batch("agency-002", "Debt", "published", [
            {"path": "bureau.history", "type": "L", "what": "new_field", "rows": 7, "first_us": 30 * US, "last_us": 31 * US}]),
        batch("agency-002", "Plan", "published", None),
    ])
    rows = {(r["tenant_id"], r["path"], r["dynamodb_type"]): r for r in drift_summary(log).to_pylist()}
    assert set(rows) == {("agency-001", "bureau.history", "L"), ("agency-001", "apr", "S->N"),
                         ("agency-002", "bureau.history", "L")}
    history = rows[("agency-001", "bureau.history", "L")]
    assert (history["rows"], history["batches"], history["what"]) == (35, 2, "new_field")  # not the failed 99
    assert history["first_seen"] == datetime.fromtimestamp(5, UTC) and history["last_seen"] == datetime.fromtimestamp(20, UTC)
    assert rows[("agency-001", "apr", "S->N")]["what"] == "coerced"
    assert drift_summary(None).num_rows == 0
