"""Known-bad items for the quality gate to catch, written into full exports on request.

Each defect is recorded with the outcome the pipeline owes it, so tests (and the demo) check
exactly which rows went where. The table's true state is untouched: only the exported copy is bad.
"""

from __future__ import annotations

import random

# entity -> (attribute, bad value, outcome, reason the pipeline must give)
DEFECTS = {
    "Debt": [
        ("apr", {"N": "150"}, "quarantine", "expect_column_values_to_be_between(apr)"),
        ("balance", {"N": "-25.00"}, "quarantine", "expect_column_values_to_be_between(balance)"),
        ("delinquencyDays", {"N": "5000"}, "warn", "expect_column_values_to_be_between(delinquency_days)"),
    ],
    "Consumer": [
        ("state", {"S": "zz"}, "warn", "expect_column_values_to_match_regex(state)"),
        ("status", {"S": "ARCHIVED"}, "quarantine", "expect_column_values_to_be_in_set(status)"),
    ],
    "Expense": [("monthlyAmount", {"N": "12.345"}, "quarantine", "n_scale")],
    "Payment": [("tenantId", None, "quarantine", "tenant_mismatch")],  # the item names another agency
}


def inject_defects(tenant, entity: str, items: dict[str, dict], per_kind: int, rng: random.Random) -> list[dict]:
    """Replace `per_kind` items per defect kind with bad copies (in `items`, the export's copy)."""
    out = []
    ids = sorted(items)
    for attr, bad, outcome, reason in DEFECTS.get(entity, []):
        for key in rng.sample(ids, min(per_kind, len(ids))):
            ids.remove(key)
            value = bad if bad is not None else {"S": "agency-999" if tenant.tenant_id != "agency-999" else "x"}
            items[key] = {**items[key], attr: value}
            out.append({"tenant_id": tenant.tenant_id, "entity": entity, "id": key, "attribute": attr,
                        "outcome": outcome, "reason": reason})
    return out
