"""A deterministic history of one agency's tables: consumers onboard, apply, get counseled,
enrol in plans, pay, graduate or drop; debts carry bureau spellings of their creditors.

Items are held as DynamoDB JSON (typed attribute values), exactly what the tables would hold, so
the export writer serialises them untouched. Before the full export only the final state is kept
(the warm-up would otherwise hold millions of dead versions); after it every change is logged with
its old and new image, which is what incremental exports and streams are cut from.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from tenantlake.contracts import (
    ACCOUNT_TYPES,
    CHANNELS,
    EXPENSE_CATEGORIES,
    INCOME_SOURCES,
)

DAY_US = 86_400_000_000
CENT = Decimal("0.01")

# Canonical creditor -> the spellings bureaus and consumers use for it. dim_creditor must fold
# each group into one creditor across agencies; the canonical name is ground truth only.
CREDITORS: dict[str, tuple[str, ...]] = {
    "Chase": ("CHASE BANK USA NA", "Chase", "JPMCB CARD", "CHASE CARD SERVICES"),
    "Capital One": ("CAPITAL ONE BANK USA NA", "CAP ONE", "Capital One", "CAPITAL ONE NA"),
    "Citibank": ("CITIBANK NA", "CITI CARDS CBNA", "Citi"),
    "Discover": ("DISCOVER BANK", "DISCOVER FIN SVCS LLC", "Discover Card"),
    "Synchrony": ("SYNCB/AMAZON", "SYNCHRONY BANK", "SYNCB/CARE CREDIT", "SYNCB/LOWES"),
    "American Express": ("AMEX", "AMERICAN EXPRESS", "AMERICAN EXPRESS NATIONAL BANK"),
    "Wells Fargo": ("WELLS FARGO BANK NA", "WF CRD SVC", "Wells Fargo"),
    "Bank of America": ("BANK OF AMERICA", "BK OF AMER", "Bank of America NA"),
    "Barclays": ("BARCLAYS BANK DELAWARE", "BARCLAYCARD US"),
    "Midland Credit": ("MIDLAND CREDIT MANAGEMENT", "MIDLAND CREDIT MGMT"),
}
SPELLING_TO_CREDITOR = {s: c for c, spellings in CREDITORS.items() for s in spellings}

FIRST = ("Ana", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Kira",
         "Liam", "Maya", "Noah", "Olu", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Vic")
LAST = ("Garcia", "Smith", "Nguyen", "Okafor", "Kowalski", "Haddad", "Tanaka", "Silva", "Brown",
        "Ivanova", "Johnson", "Lee", "Martin", "Patel", "Rossi", "Schmidt", "Walker", "Young")
STATES = ("CA", "TX", "FL", "NY", "IL", "OH", "GA", "NC", "MI", "WA", "AZ", "CO", "MN", "OR")
CERTS = ("NFCC", "AFCPE", "HUD")


_DAY_PREFIX: dict[int, str] = {}


def iso(us: int) -> str:
    """Epoch microseconds as AWSDateTime ('2026-11-20T07:28:34.028Z'). Hot in the simulator:
    strftime per call was a tenth of its time, so the date part is cached per day."""
    day, rest = divmod(us, DAY_US)
    prefix = _DAY_PREFIX.get(day)
    if prefix is None:
        prefix = _DAY_PREFIX[day] = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%dT")
    ms = rest // 1000
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    return f"{prefix}{h:02d}:{m:02d}:{ms // 1000:02d}.{ms % 1000:03d}Z"


def day_of(us: int) -> date:
    return datetime.fromtimestamp(us / 1e6, UTC).date()


def typed(value) -> dict:
    """A Python value as a DynamoDB attribute value (the simulator's own small encoder)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | Decimal):
        return {"N": str(value)}
    if isinstance(value, frozenset):
        return {"SS": sorted(value)}
    if isinstance(value, list):
        return {"L": [typed(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {k: typed(v) for k, v in value.items()}}
    raise TypeError(f"no DynamoDB type for {type(value).__name__}")


@dataclass(order=True)
class Change:
    ts: int  # event time, epoch microseconds
    seq: int  # generation order breaks ties deterministically
    entity: str = field(compare=False)
    key: str = field(compare=False)
    old: dict | None = field(compare=False)
    new: dict | None = field(compare=False)


@dataclass
class Consumer:
    id: str
    status: str
    app_id: str | None = None
    plan_id: str | None = None
    debt_ids: list[str] = field(default_factory=list)
    expense_ids: list[str] = field(default_factory=list)
    income_ids: list[str] = field(default_factory=list)
    next_due: date | None = None  # the next scheduled payment's date
    payment_id: str | None = None  # the scheduled payment
    paid: int = 0


class TenantHistory:
    """Runs the agency's days; `state` is the tables, `changes` the log after `log_from_us`."""

    def __init__(self, tenant_id: str, seed: int, consumers: int, start: datetime,
                 warmup_days: int, days: int):
        self.tenant_id = tenant_id
        self.rng = random.Random(seed)
        self.state: dict[str, dict[str, dict]] = {e: {} for e in (
            "Consumer", "Counselor", "Application", "Income", "Expense", "Debt", "Plan", "Payment")}
        self.changes: list[Change] = []
        self.start_us = int(start.timestamp() * 1e6)
        self.warmup_days = warmup_days
        self.days = days
        self.consumers_total = consumers
        self.log_from_us = self.start_us + warmup_days * DAY_US  # the full export's time
        self.people: list[Consumer] = []
        self._seq = 0
        self._ids = 0
        self._base = self._k = 0

    # -- the item store ------------------------------------------------------------------------
    def _new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}-{self.rng.getrandbits(48):012x}-{self._ids}"

    def _tick(self, us: int) -> int:
        # Writes of one step share its time; each gets its own millisecond so an item's changes
        # are strictly ordered. An item belongs to one consumer, stepped once a day, so its
        # event times only ever grow.
        self._k = self._k + 1 if us == self._base else 0
        self._base = us
        return us + self._k * 1_000

    def put(self, entity: str, id_: str, attrs: dict, at_us: int) -> None:
        ts = self._tick(at_us)
        table = self.state[entity]
        old = table.get(id_)
        ms = ts // 1000
        if old is None:
            new = {"id": {"S": id_}, "__typename": {"S": entity}, "createdAt": {"S": iso(ts)}}
            version = 1
        else:
            new = dict(old)
            version = int(old["_version"]["N"]) + 1
        for k, v in attrs.items():
            new[k] = typed(v)
        new["updatedAt"] = {"S": iso(ts)}
        new["_version"] = {"N": str(version)}
        new["_lastChangedAt"] = {"N": str(ms)}
        table[id_] = new
        self._log(ts, entity, id_, old, new)

    def remove(self, entity: str, id_: str, at_us: int) -> None:
        ts = self._tick(at_us)
        old = self.state[entity].pop(id_)
        self._log(ts, entity, id_, old, None)

    def _log(self, ts, entity, id_, old, new) -> None:
        if ts >= self.log_from_us:
            self._seq += 1
            self.changes.append(Change(ts, self._seq, entity, id_, old, new))

    def attr(self, entity: str, id_: str, name: str):
        value = self.state[entity][id_][name]
        return next(iter(value.values()))

    # -- the agency's life -----------------------------------------------------------------------
    def run(self) -> TenantHistory:
        rng = self.rng
        counselors = []
        for _ in range(rng.randint(4, 12)):
            cid = self._new_id("cns")
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            self.put("Counselor", cid, {
                "name": name, "email": f"{name.replace(' ', '.').lower()}@agency.example",
                "certification": rng.choice(CERTS), "active": True,
            }, self.start_us + rng.randrange(DAY_US))
            counselors.append(cid)
        self.counselors = counselors
        arrivals_per_day = self.consumers_total / max(1, self.warmup_days + self.days)
        owed = 0.0
        for d in range(self.warmup_days + self.days):
            day_us = self.start_us + d * DAY_US
            owed += arrivals_per_day
            arrivals, owed = int(owed), owed - int(owed)
            for _ in range(arrivals):
                self._onboard(day_us)
            for person in self.people:
                if person.status not in ("GRADUATED", "DROPPED"):
                    self._step(person, day_us)
            if rng.random() < 0.3:  # counselors come and go
                cid = rng.choice(counselors)
                self.put("Counselor", cid, {"active": not self.attr("Counselor", cid, "active")},
                         day_us + rng.randrange(DAY_US))
        self.changes.sort()
        return self

    def _onboard(self, day_us: int) -> None:
        rng = self.rng
        first, last = rng.choice(FIRST), rng.choice(LAST)
        person = Consumer(self._new_id("con"), "LEAD")
        dob = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 55))
        self.put("Consumer", person.id, {
            "firstName": first, "lastName": last,
            "email": f"{first}.{last}{self._ids}@mail.example".lower(),
            "phone": f"+1555{rng.randrange(10**7):07d}", "ssnLast4": f"{rng.randrange(10**4):04d}",
            "dateOfBirth": dob.isoformat(), "state": rng.choice(STATES),
            "postalCode": f"{rng.randrange(10**5):05d}", "householdSize": rng.randint(1, 6),
            "status": "LEAD", "counselorId": None,
        }, day_us + rng.randrange(DAY_US // 2))
        self.people.append(person)

    def _money(self, lo: int, hi: int) -> Decimal:
        return Decimal(self.rng.randrange(lo * 100, hi * 100)) * CENT

    def _step(self, p: Consumer, day_us: int) -> None:  # noqa: C901 - one state machine, read top-down
        rng = self.rng
        t = day_us + DAY_US // 2 + rng.randrange(DAY_US // 4)  # this consumer's business hours
        today = day_of(day_us)
        if p.status == "LEAD":
            if rng.random() < 0.15:
                p.status, p.app_id = "APPLYING", self._new_id("app")
                self.put("Consumer", p.id, {"status": "APPLYING"}, t)
                self.put("Application", p.app_id, {
                    "consumerId": p.id, "status": "DRAFT", "channel": rng.choice(CHANNELS),
                    "submittedAt": None, "decidedAt": None, "creditPullConsent": rng.random() < 0.9,
                }, t)
                for _ in range(rng.randint(1, 3)):
                    iid = self._new_id("inc")
                    p.income_ids.append(iid)
                    self.put("Income", iid, {
                        "consumerId": p.id, "source": rng.choice(INCOME_SOURCES),
                        "monthlyAmount": self._money(400, 5200), "verified": False,
                    }, t)
                for cat in rng.sample(EXPENSE_CATEGORIES, rng.randint(3, 6)):
                    eid = self._new_id("exp")
                    p.expense_ids.append(eid)
                    self.put("Expense", eid, {
                        "consumerId": p.id, "category": cat, "monthlyAmount": self._money(40, 1800),
                    }, t)
            return
        if p.status == "APPLYING":
            app_status = self.attr("Application", p.app_id, "status")
            if app_status == "DRAFT":
                if rng.random() < 0.4:
                    self.put("Application", p.app_id, {"status": "SUBMITTED", "submittedAt": iso(t)}, t)
                elif rng.random() < 0.03:
                    self.put("Application", p.app_id, {"status": "WITHDRAWN"}, t)
                    self._drop(p, t)
            elif rng.random() < 0.35:
                if rng.random() < 0.75:
                    self.put("Application", p.app_id, {"status": "APPROVED", "decidedAt": iso(t)}, t)
                    p.status = "COUNSELED"
                    self.put("Consumer", p.id, {
                        "status": "COUNSELED", "counselorId": rng.choice(self.counselors)}, t)
                    self._pull_debts(p, t)
                else:
                    self.put("Application", p.app_id, {"status": "DECLINED", "decidedAt": iso(t)}, t)
                    self._drop(p, t)
            return
        self._noise(p, t)
        if p.status == "COUNSELED":
            if p.plan_id is None and rng.random() < 0.3:
                self._propose_plan(p, t, today)
            elif p.plan_id is not None and rng.random() < 0.6:
                p.status = "ENROLLED"
                self.put("Plan", p.plan_id, {"status": "ACTIVE"}, t)
                self.put("Consumer", p.id, {"status": "ENROLLED"}, t)
                self._schedule_payment(p, today + timedelta(days=rng.randint(1, 10)), t)
            elif rng.random() < 0.02:
                self._drop(p, t)
        elif p.status == "ENROLLED":
            if p.next_due is not None and p.next_due <= today:
                self._settle(p, t, today)
            elif rng.random() < 0.002:
                self._drop(p, t)

    def _noise(self, p: Consumer, t: int) -> None:
        """Edits unrelated to the lifecycle: verified income, a hard-deleted expense, a
        soft-deleted (DataStore `_deleted`) self-reported debt, a bureau refresh."""
        rng = self.rng
        r = rng.random()
        if r < 0.02 and p.income_ids:
            self.put("Income", rng.choice(p.income_ids), {"verified": True}, t)
        elif r < 0.03 and len(p.expense_ids) > 1:
            self.remove("Expense", p.expense_ids.pop(rng.randrange(len(p.expense_ids))), t)
        elif r < 0.04 and p.debt_ids:
            did = p.debt_ids[-1]
            if self.attr("Debt", did, "source") == "SELF_REPORTED" and p.plan_id is None:
                self.put("Debt", did, {"_deleted": True}, t)
                p.debt_ids.pop()
        elif r < 0.09 and p.debt_ids:
            did = rng.choice(p.debt_ids)
            days = int(self.attr("Debt", did, "delinquencyDays"))
            self.put("Debt", did, {"delinquencyDays": min(180, days + rng.choice((0, 30)))}, t)

    def _pull_debts(self, p: Consumer, t: int) -> None:
        rng = self.rng
        n = rng.randint(2, 8)
        for i in range(n):
            creditor = rng.choice(list(CREDITORS))
            spelling = rng.choice(CREDITORS[creditor])
            balance = self._money(150, 24000)
            did = self._new_id("dbt")
            p.debt_ids.append(did)
            self_reported = i == n - 1 and rng.random() < 0.3
            self.put("Debt", did, {
                "consumerId": p.id, "creditorName": spelling,
                "accountType": rng.choice(ACCOUNT_TYPES), "balance": balance,
                "apr": Decimal(rng.randrange(0, 3599)) / 100,
                "minimumPayment": max(Decimal("25.00"), (balance * Decimal("0.025")).quantize(CENT)),
                "delinquencyDays": rng.choice((0, 0, 0, 30, 60, 90, 120)),
                "source": "SELF_REPORTED" if self_reported else "TRANSUNION",
                "tags": frozenset(rng.sample(("hardship", "medical", "collections", "joint",
                                              "disputed"), rng.randint(1, 2))),
                "bureau": None if self_reported else {
                    "name": "TRANSUNION", "pulledAt": iso(t),
                    "tradeline": {"opened": f"{rng.randint(2008, 2025)}-0{rng.randint(1, 9)}",
                                  "highCredit": balance + self._money(0, 5000)},
                },
            }, t)

    def _propose_plan(self, p: Consumer, t: int, today: date) -> None:
        rng = self.rng
        p.plan_id = self._new_id("pln")
        debts = [self.state["Debt"][d] for d in p.debt_ids]
        total_min = sum(Decimal(d["minimumPayment"]["N"]) for d in debts)
        creditors = sorted({d["creditorName"]["S"] for d in debts})
        self.put("Plan", p.plan_id, {
            "consumerId": p.id, "counselorId": self.attr("Consumer", p.id, "counselorId"),
            "status": "PROPOSED", "monthlyPayment": (total_min * Decimal("0.85")).quantize(CENT),
            "termMonths": rng.choice((36, 48, 60)), "startDate": (today + timedelta(days=7)).isoformat(),
            "enrolledDebtIds": frozenset(p.debt_ids),
            "concessions": [{"creditorName": c, "newApr": Decimal(rng.randrange(0, 999)) / 100}
                            for c in creditors],
        }, t)

    def _schedule_payment(self, p: Consumer, due: date, t: int) -> None:
        p.payment_id, p.next_due = self._new_id("pay"), due
        self.put("Payment", p.payment_id, {
            "planId": p.plan_id, "consumerId": p.id,
            "amount": Decimal(self.attr("Plan", p.plan_id, "monthlyPayment")),
            "scheduledDate": due.isoformat(), "paidAt": None, "status": "SCHEDULED",
        }, t)

    def _settle(self, p: Consumer, t: int, today: date) -> None:
        rng = self.rng
        if rng.random() < 0.07:
            self.put("Payment", p.payment_id, {"status": "RETURNED"}, t)
            self._schedule_payment(p, today + timedelta(days=7), t)
            return
        amount = Decimal(self.attr("Payment", p.payment_id, "amount"))
        self.put("Payment", p.payment_id, {"status": "SETTLED", "paidAt": iso(t)}, t)
        p.paid += 1
        self._pay_down(p, amount, t)
        if p.paid >= int(self.attr("Plan", p.plan_id, "termMonths")) or all(
            Decimal(self.attr("Debt", d, "balance")) == 0 for d in p.debt_ids
        ):
            p.status = "GRADUATED"
            self.put("Plan", p.plan_id, {"status": "COMPLETED"}, t)
            self.put("Consumer", p.id, {"status": "GRADUATED"}, t)
            p.next_due = None
        else:
            self._schedule_payment(p, p.next_due + timedelta(days=30), t)

    def _pay_down(self, p: Consumer, amount: Decimal, t: int) -> None:
        """Split a payment over the enrolled debts by minimum payment, to the cent."""
        debts = [d for d in p.debt_ids if Decimal(self.attr("Debt", d, "balance")) > 0]
        weights = [Decimal(self.attr("Debt", d, "minimumPayment")) for d in debts]
        total = sum(weights)
        left = amount
        for i, (did, w) in enumerate(zip(debts, weights, strict=True)):
            share = left if i == len(debts) - 1 else (amount * w / total).quantize(CENT)
            left -= share
            balance = Decimal(self.attr("Debt", did, "balance"))
            self.put("Debt", did, {"balance": max(Decimal("0.00"), balance - share)}, t)

    def _drop(self, p: Consumer, t: int) -> None:
        p.status = "DROPPED"
        if p.plan_id is not None:
            self.put("Plan", p.plan_id, {"status": "CANCELLED"}, t)
            if p.payment_id and self.attr("Payment", p.payment_id, "status") == "SCHEDULED":
                self.remove("Payment", p.payment_id, t)  # a cancelled plan's pending debit is deleted
        self.put("Consumer", p.id, {"status": "DROPPED"}, t)
        p.next_due = None
