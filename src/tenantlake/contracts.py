"""Entity contracts: the one declaration of every tenant table's columns.

The decoder, the quality suites and the warehouse all read these. Each attribute names its
DynamoDB attribute, its snake_case column, its logical kind (which fixes the Arrow type), whether
it may be null, whether it is the key, and its PII class. Money and rates are exact decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa


class Pii(StrEnum):
    NONE = "none"
    DIRECT = "direct"  # identifies a person on its own: names, email, phone, ssnLast4
    QUASI = "quasi"  # identifies in combination: dateOfBirth, full postalCode


# A kind is what the decoder needs to know: which DynamoDB types it accepts and the Arrow type.
KINDS: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "money": pa.decimal128(18, 2),
    "rate": pa.decimal128(7, 4),
    "timestamp": pa.timestamp("us", tz="UTC"),  # AWSDateTime, ISO-8601 text (may carry microseconds)
    "epoch_ms": pa.timestamp("ms", tz="UTC"),  # N holding epoch milliseconds
    "date": pa.date32(),  # AWSDate, YYYY-MM-DD text
    "string_set": pa.list_(pa.string()),
    "json": pa.string(),  # M and L with no declared shape, kept as canonical JSON text
}

# M and L attributes whose shape the contract declares are kept as Arrow structs and lists
# (Parquet nested types, Redshift SUPER), so analysts query fields instead of parsing text.
SHAPES: dict[str, pa.DataType] = {
    "bureau": pa.struct([
        ("name", pa.string()),
        ("pulledAt", pa.string()),
        ("tradeline", pa.struct([("opened", pa.string()), ("highCredit", pa.decimal128(18, 2))])),
    ]),
    "concessions": pa.list_(pa.struct([("creditorName", pa.string()),
                                       ("newApr", pa.decimal128(7, 4))])),
}


@dataclass(frozen=True)
class Attribute:
    name: str  # as in DynamoDB
    column: str  # as in the lake and the warehouse
    kind: str
    nullable: bool = True
    key: bool = False
    pii: Pii = Pii.NONE
    values: tuple[str, ...] = ()  # the allowed values of an enumeration

    @property
    def arrow_type(self) -> pa.DataType:
        return SHAPES[self.kind] if self.kind in SHAPES else KINDS[self.kind]


@dataclass(frozen=True)
class Entity:
    name: str
    attributes: tuple[Attribute, ...]

    @property
    def key(self) -> Attribute:
        return next(a for a in self.attributes if a.key)

    @property
    def by_name(self) -> dict[str, Attribute]:
        return {a.name: a for a in self.attributes}

    @property
    def pii_columns(self) -> tuple[str, ...]:
        return tuple(a.column for a in self.attributes if a.pii is not Pii.NONE)

    @property
    def schema(self) -> pa.Schema:
        """The contract columns as Arrow fields (the lake adds its metadata columns)."""
        return pa.schema([pa.field(a.column, a.arrow_type, a.nullable) for a in self.attributes])


def _a(name, column, kind, *, nullable=True, key=False, pii=Pii.NONE, values=()):
    return Attribute(name, column, kind, nullable, key, pii, tuple(values))


# Amplify / DataStore fields every model carries.
COMMON = (
    _a("id", "id", "string", nullable=False, key=True),
    _a("__typename", "typename", "string"),
    _a("createdAt", "created_at", "timestamp"),
    _a("updatedAt", "updated_at", "timestamp"),
    _a("_version", "ddb_version", "int"),
    _a("_lastChangedAt", "last_changed_at", "epoch_ms"),
    _a("_deleted", "is_deleted", "bool"),
)

CONSUMER_STATUS = ("LEAD", "APPLYING", "COUNSELED", "ENROLLED", "GRADUATED", "DROPPED")
APPLICATION_STATUS = ("DRAFT", "SUBMITTED", "APPROVED", "DECLINED", "WITHDRAWN")
CHANNELS = ("WEB", "PHONE", "REFERRAL")
INCOME_SOURCES = ("EMPLOYMENT", "SELF_EMPLOYMENT", "BENEFITS", "PENSION", "OTHER")
EXPENSE_CATEGORIES = (
    "HOUSING", "UTILITIES", "FOOD", "TRANSPORT", "INSURANCE", "CHILDCARE", "MEDICAL", "OTHER",
)
ACCOUNT_TYPES = ("CREDIT_CARD", "PERSONAL_LOAN", "MEDICAL", "AUTO_LOAN", "STUDENT_LOAN", "COLLECTION")
DEBT_SOURCES = ("TRANSUNION", "SELF_REPORTED")
PLAN_STATUS = ("PROPOSED", "ACTIVE", "COMPLETED", "CANCELLED")
PAYMENT_STATUS = ("SCHEDULED", "SETTLED", "RETURNED")

ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity("Consumer", COMMON + (
            _a("firstName", "first_name", "string", pii=Pii.DIRECT),
            _a("lastName", "last_name", "string", pii=Pii.DIRECT),
            _a("email", "email", "string", pii=Pii.DIRECT),
            _a("phone", "phone", "string", pii=Pii.DIRECT),
            _a("ssnLast4", "ssn_last4", "string", pii=Pii.DIRECT),
            _a("dateOfBirth", "date_of_birth", "date", pii=Pii.QUASI),
            _a("state", "state", "string"),
            _a("postalCode", "postal_code", "string", pii=Pii.QUASI),
            _a("householdSize", "household_size", "int"),
            _a("status", "status", "string", nullable=False, values=CONSUMER_STATUS),
            _a("counselorId", "counselor_id", "string"),
        )),
        Entity("Counselor", COMMON + (
            _a("name", "name", "string"),
            _a("email", "email", "string"),
            _a("certification", "certification", "string"),
            _a("active", "active", "bool"),
        )),
        Entity("Application", COMMON + (
            _a("consumerId", "consumer_id", "string", nullable=False),
            _a("status", "status", "string", nullable=False, values=APPLICATION_STATUS),
            _a("channel", "channel", "string", values=CHANNELS),
            _a("submittedAt", "submitted_at", "timestamp"),
            _a("decidedAt", "decided_at", "timestamp"),
            _a("creditPullConsent", "credit_pull_consent", "bool"),
        )),
        Entity("Income", COMMON + (
            _a("consumerId", "consumer_id", "string", nullable=False),
            _a("source", "source", "string", values=INCOME_SOURCES),
            _a("monthlyAmount", "monthly_amount", "money"),
            _a("verified", "verified", "bool"),
        )),
        Entity("Expense", COMMON + (
            _a("consumerId", "consumer_id", "string", nullable=False),
            _a("category", "category", "string", values=EXPENSE_CATEGORIES),
            _a("monthlyAmount", "monthly_amount", "money"),
        )),
        Entity("Debt", COMMON + (
            _a("consumerId", "consumer_id", "string", nullable=False),
            _a("creditorName", "creditor_name", "string"),
            _a("accountType", "account_type", "string", values=ACCOUNT_TYPES),
            _a("balance", "balance", "money"),
            _a("apr", "apr", "rate"),
            _a("minimumPayment", "minimum_payment", "money"),
            _a("delinquencyDays", "delinquency_days", "int"),
            _a("source", "source", "string", values=DEBT_SOURCES),
            _a("tags", "tags", "string_set"),
            _a("bureau", "bureau", "bureau"),
        )),
        Entity("Plan", COMMON + (
            _a("consumerId", "consumer_id", "string", nullable=False),
            _a("counselorId", "counselor_id", "string"),
            _a("status", "status", "string", nullable=False, values=PLAN_STATUS),
            _a("monthlyPayment", "monthly_payment", "money"),
            _a("termMonths", "term_months", "int"),
            _a("startDate", "start_date", "date"),
            _a("enrolledDebtIds", "enrolled_debt_ids", "string_set"),
            _a("concessions", "concessions", "concessions"),
        )),
        Entity("Payment", COMMON + (
            _a("planId", "plan_id", "string", nullable=False),
            _a("consumerId", "consumer_id", "string", nullable=False),
            _a("amount", "amount", "money"),
            _a("scheduledDate", "scheduled_date", "date"),
            _a("paidAt", "paid_at", "timestamp"),
            _a("status", "status", "string", nullable=False, values=PAYMENT_STATUS),
        )),
    )
}


def entity(name: str) -> Entity:
    """The contract of an entity, or a KeyError that lists the known ones."""
    try:
        return ENTITIES[name]
    except KeyError:
        raise KeyError(f"unknown entity {name!r}; known: {', '.join(ENTITIES)}") from None
