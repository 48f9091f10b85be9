"""Ground truth: the expected figures, computed straight from the simulator's final tables.

Deliberately independent of the pipeline (plain Python over the typed items, Decimal money), so
tests compare what the lake and the warehouse say against what actually happened.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

from tenantlake_dev.simulate.history import SPELLING_TO_CREDITOR


def _v(item: dict, name: str):
    value = item.get(name)
    if value is None or "NULL" in value:
        return None
    return next(iter(value.values()))


def is_live(item: dict) -> bool:
    return _v(item, "_deleted") is not True


def tenant_aggregates(state: dict[str, dict[str, dict]]) -> dict:
    """Figures for one agency from its final tables (soft-deleted items excluded)."""
    live = {e: [i for i in items.values() if is_live(i)] for e, items in state.items()}
    plans = {_v(p, "id"): p for p in live["Plan"]}
    active_debts = {d for p in plans.values() if _v(p, "status") == "ACTIVE"
                    for d in _v(p, "enrolledDebtIds")}
    settled_by_month: dict[str, Decimal] = defaultdict(Decimal)
    for pay in live["Payment"]:
        if _v(pay, "status") == "SETTLED":
            settled_by_month[_v(pay, "paidAt")[:7]] += Decimal(_v(pay, "amount"))
    exposure: dict[str, Decimal] = defaultdict(Decimal)
    for d in live["Debt"]:
        exposure[SPELLING_TO_CREDITOR[_v(d, "creditorName")]] += Decimal(_v(d, "balance"))

    def by(entity, attr):
        return dict(sorted(Counter(_v(i, attr) for i in live[entity]).items()))

    return {
        "items": {e: len(items) for e, items in state.items()},
        "live_items": {e: len(items) for e, items in live.items()},
        "soft_deleted": {e: len(state[e]) - len(live[e]) for e in state},
        "consumers_by_status": by("Consumer", "status"),
        "applications_by_status": by("Application", "status"),
        "plans_by_status": by("Plan", "status"),
        "payments_by_status": by("Payment", "status"),
        "debt_balance": str(sum((Decimal(_v(d, "balance")) for d in live["Debt"]), Decimal("0.00"))),
        "enrolled_debt": str(sum((Decimal(_v(d, "balance")) for d in live["Debt"]
                                  if _v(d, "id") in active_debts), Decimal("0.00"))),
        "payments_settled_by_month": {m: str(v) for m, v in sorted(settled_by_month.items())},
        "creditor_exposure": {c: str(v) for c, v in sorted(exposure.items())},
    }


def fleet_aggregates(per_tenant: dict[str, dict]) -> dict:
    """Cross-agency figures: sums of the per-agency ones."""
    exposure: dict[str, Decimal] = defaultdict(Decimal)
    agencies: dict[str, set] = defaultdict(set)
    items: Counter = Counter()
    for tid, agg in per_tenant.items():
        items.update(agg["live_items"])
        for c, v in agg["creditor_exposure"].items():
            exposure[c] += Decimal(v)
            agencies[c].add(tid)
    return {
        "live_items": dict(items),
        "debt_balance": str(sum((Decimal(a["debt_balance"]) for a in per_tenant.values()),
                                Decimal("0.00"))),
        "creditor_exposure": {c: {"balance": str(v), "agencies": len(agencies[c])}
                              for c, v in sorted(exposure.items())},
    }
