"""Entity contracts: the one declaration of every tenant table's columns, and the drift policy.

The decoder, the quality suites, the lake, the privacy rules and the warehouse all read these.
Each attribute names its DynamoDB attribute, its snake_case column, its logical kind (which fixes
the Arrow type), whether it may be null, whether it is the key, its PII class, and what it means
(the column docs BI tools show). Money and rates are exact decimals.

Drift policy (agencies upgrade their app on their own schedule, so every tenant drifts):
  * A new top-level attribute, a new field inside a declared map, a new shape of list element:
    the row is published; the undeclared part is kept losslessly in `_extra` (the item's
    undeclared parts as DynamoDB JSON, nested as in the item) and the drift is recorded per
    (tenant, entity, attribute path, DynamoDB type).
  * An enum value outside `values`: published as sent, with a `warn` result; an attribute
    declared `closed` quarantines such rows instead.
  * A type change (N where S is declared, or S holding a number where N is): coerced when the
    value converts exactly and losslessly, and recorded as drift; quarantined otherwise, with a
    reason naming the path and both types.
  * Promotion: declaring a drifted attribute here adds it as a column in the lake and the
    warehouse (additive only, never a rename); rows published earlier get their value from their
    kept `_extra`. A `retired` attribute stops being required and keeps its column and history.

PII classes (tenantlake.privacy applies them; only landing, raw and quarantine hold clear values):
  direct     identifies a person on its own (names, email, phone, ssnLast4): never past raw
  quasi      identifies in combination (dateOfBirth, full postalCode): coarsened past raw
  reference  the agency's own id of a consumer: the per-tenant keyed pseudonym past raw
  none       not personal data
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa


class Pii(StrEnum):
    NONE = "none"
    DIRECT = "direct"  # identifies a person on its own: names, email, phone, ssnLast4
    QUASI = "quasi"  # identifies in combination: dateOfBirth, full postalCode
    REFERENCE = "reference"  # a consumer's id in the agency's records: pseudonymised past raw


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
    doc: str = ""  # what the column means, for the column docs BI tools read
    closed: bool = False  # an enum whose unknown values are quarantined (default: published, warned)
    retired: bool = False  # no longer sent by current app versions: never required, column kept
    protected_as: str = ""  # the column a quasi identifier becomes past raw (tenantlake.privacy)

    def __post_init__(self):
        if self.retired and not self.nullable:  # it was read nowhere: a retired attribute stayed required
            object.__setattr__(self, "nullable", True)

    @property
    def arrow_type(self) -> pa.DataType:
        return SHAPES[self.kind] if self.kind in SHAPES else KINDS[self.kind]


@dataclass(frozen=True)
class Entity:
    name: str
    attributes: tuple[Attribute, ...]
    doc: str = ""

    @property
    def key(self) -> Attribute:
        return next(a for a in self.attributes if a.key)

    @property
    def by_name(self) -> dict[str, Attribute]:
        return {a.name: a for a in self.attributes}

    @property
    def pii_columns(self) -> tuple[str, ...]:
        """Columns holding personal data values (direct and quasi identifiers)."""
        return tuple(a.column for a in self.attributes if a.pii in (Pii.DIRECT, Pii.QUASI))

    @property
    def consumer_reference(self) -> Attribute | None:
        """The attribute naming a consumer (Consumer's own id, another entity's consumerId)."""
        return next((a for a in self.attributes if a.pii is Pii.REFERENCE), None)

    @property
    def schema(self) -> pa.Schema:
        """The contract columns as Arrow fields (the lake adds its metadata columns)."""
        return pa.schema([pa.field(a.column, a.arrow_type, a.nullable) for a in self.attributes])


def _a(name, column, kind, doc, *, nullable=True, key=False, pii=Pii.NONE, values=(), closed=False, retired=False,
       protected_as=""):
    return Attribute(name, column, kind, nullable, key, pii, tuple(values), doc, closed, retired, protected_as)


def _common(what: str, key_pii: Pii = Pii.NONE) -> tuple[Attribute, ...]:
    """Amplify / DataStore fields every model carries."""
    return (
        _a("id", "id", "string", f"The {what}'s id in the agency's app (DynamoDB partition key).",
           nullable=False, key=True, pii=key_pii),
        _a("__typename", "typename", "string", "The GraphQL type name Amplify wrote."),
        _a("createdAt", "created_at", "timestamp", f"When the {what} was created in the app (UTC)."),
        _a("updatedAt", "updated_at", "timestamp", f"When the {what} was last updated in the app (UTC)."),
        _a("_version", "ddb_version", "int", "DataStore's version counter of the item."),
        _a("_lastChangedAt", "last_changed_at", "epoch_ms", "DataStore's time of the item's last change (UTC)."),
        _a("_deleted", "is_deleted", "bool", "DataStore's soft delete: true once the item is deleted in the app."),
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

CONSUMER = "consumer's id (pseudonymised past raw)"
ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity("Consumer", _common("consumer", Pii.REFERENCE) + (
            _a("firstName", "first_name", "string", "First name.", pii=Pii.DIRECT),
            _a("lastName", "last_name", "string", "Last name.", pii=Pii.DIRECT),
            _a("email", "email", "string", "Email address.", pii=Pii.DIRECT),
            _a("phone", "phone", "string", "Phone number.", pii=Pii.DIRECT),
            _a("ssnLast4", "ssn_last4", "string", "Last four digits of the social security number.", pii=Pii.DIRECT),
            _a("dateOfBirth", "date_of_birth", "date", "Date of birth (an age band past raw).", pii=Pii.QUASI,
               protected_as="age_band"),
            _a("state", "state", "string", "US state of residence (two letters)."),
            _a("postalCode", "postal_code", "string", "Postal code (its first three digits past raw).",
               pii=Pii.QUASI, protected_as="postal_prefix"),
            _a("householdSize", "household_size", "int", "People in the household."),
            _a("status", "status", "string", "Where the consumer is in the program.", nullable=False,
               values=CONSUMER_STATUS),
            _a("counselorId", "counselor_id", "string", "The counselor assigned to the consumer."),
        ), "A person seeking credit counseling at an agency."),
        Entity("Counselor", _common("counselor") + (
            _a("name", "name", "string", "The counselor's name (agency staff)."),
            _a("email", "email", "string", "The counselor's work email (agency staff)."),
            _a("certification", "certification", "string", "The counselor's certification."),
            _a("active", "active", "bool", "Whether the counselor currently works cases."),
        ), "An agency's credit counselor."),
        Entity("Application", _common("application") + (
            _a("consumerId", "consumer_id", "string", f"The {CONSUMER}.", nullable=False, pii=Pii.REFERENCE),
            _a("status", "status", "string", "Where the application stands.", nullable=False,
               values=APPLICATION_STATUS),
            _a("channel", "channel", "string", "How the application came in.", values=CHANNELS),
            _a("submittedAt", "submitted_at", "timestamp", "When the consumer submitted it (UTC)."),
            _a("decidedAt", "decided_at", "timestamp", "When the agency decided it (UTC)."),
            _a("creditPullConsent", "credit_pull_consent", "bool", "Whether the consumer consented to a credit pull."),
        ), "A consumer's application to a debt management program."),
        Entity("Income", _common("income") + (
            _a("consumerId", "consumer_id", "string", f"The {CONSUMER}.", nullable=False, pii=Pii.REFERENCE),
            _a("source", "source", "string", "Where the income comes from.", values=INCOME_SOURCES),
            _a("monthlyAmount", "monthly_amount", "money", "Monthly amount (USD)."),
            _a("verified", "verified", "bool", "Whether the agency verified the income."),
        ), "One source of a consumer's monthly income."),
        Entity("Expense", _common("expense") + (
            _a("consumerId", "consumer_id", "string", f"The {CONSUMER}.", nullable=False, pii=Pii.REFERENCE),
            _a("category", "category", "string", "Budget category.", values=EXPENSE_CATEGORIES),
            _a("monthlyAmount", "monthly_amount", "money", "Monthly amount (USD)."),
        ), "One of a consumer's monthly expenses."),
        Entity("Debt", _common("debt") + (
            _a("consumerId", "consumer_id", "string", f"The {CONSUMER}.", nullable=False, pii=Pii.REFERENCE),
            _a("creditorName", "creditor_name", "string", "The creditor as the bureau or the consumer spelled it."),
            _a("accountType", "account_type", "string", "Kind of account.", values=ACCOUNT_TYPES),
            _a("balance", "balance", "money", "Outstanding balance (USD)."),
            _a("apr", "apr", "rate", "Annual percentage rate (percent)."),
            _a("minimumPayment", "minimum_payment", "money", "Minimum monthly payment (USD)."),
            _a("delinquencyDays", "delinquency_days", "int", "Days past due."),
            _a("source", "source", "string", "Where the debt was learned from.", values=DEBT_SOURCES),
            _a("tags", "tags", "string_set", "Free tags the counselor set."),
            _a("bureau", "bureau", "bureau", "The credit bureau's tradeline, when pulled."),
        ), "A consumer's debt to one creditor."),
        Entity("Plan", _common("plan") + (
            _a("consumerId", "consumer_id", "string", f"The {CONSUMER}.", nullable=False, pii=Pii.REFERENCE),
            _a("counselorId", "counselor_id", "string", "The counselor who built the plan."),
            _a("status", "status", "string", "Where the plan stands.", nullable=False, values=PLAN_STATUS),
            _a("monthlyPayment", "monthly_payment", "money", "The consumer's monthly payment into the plan (USD)."),
            _a("termMonths", "term_months", "int", "Planned length in months."),
            _a("startDate", "start_date", "date", "First month of the plan."),
            _a("enrolledDebtIds", "enrolled_debt_ids", "string_set", "The debts the plan pays down."),
            _a("concessions", "concessions", "concessions", "Rates the creditors conceded."),
        ), "A debt management plan."),
        Entity("Payment", _common("payment") + (
            _a("planId", "plan_id", "string", "The plan the payment belongs to.", nullable=False),
            _a("consumerId", "consumer_id", "string", f"The {CONSUMER}.", nullable=False, pii=Pii.REFERENCE),
            _a("amount", "amount", "money", "Amount (USD)."),
            _a("scheduledDate", "scheduled_date", "date", "When the payment is due."),
            _a("paidAt", "paid_at", "timestamp", "When it settled (UTC)."),
            _a("status", "status", "string", "Where the payment stands.", nullable=False, values=PAYMENT_STATUS),
        ), "A consumer's payment into a plan."),
    )
}


def entity(name: str) -> Entity:
    """The contract of an entity, or a KeyError that lists the known ones."""
    try:
        return ENTITIES[name]
    except KeyError:
        raise KeyError(f"unknown entity {name!r}; known: {', '.join(ENTITIES)}") from None
