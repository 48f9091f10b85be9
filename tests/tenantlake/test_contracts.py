import re

import pyarrow as pa

from tenantlake.contracts import ENTITIES, Pii, entity

# The attributes DESIGN.md lists per entity (besides the common Amplify ones), typed by hand.
DESIGN = {
    "Consumer": "firstName lastName email phone ssnLast4 dateOfBirth state postalCode householdSize status counselorId",
    "Counselor": "name email certification active",
    "Application": "consumerId status channel submittedAt decidedAt creditPullConsent",
    "Income": "consumerId source monthlyAmount verified",
    "Expense": "consumerId category monthlyAmount",
    "Debt": "consumerId creditorName accountType balance apr minimumPayment delinquencyDays source tags bureau",
    "Plan": "consumerId counselorId status monthlyPayment termMonths startDate enrolledDebtIds concessions",
    "Payment": "planId consumerId amount scheduledDate paidAt status",
}
COMMON = ["id", "__typename", "createdAt", "updatedAt", "_version", "_lastChangedAt", "_deleted"]


def test_every_design_attribute_is_declared_in_order():
    assert list(ENTITIES) == list(DESIGN)
    for name, attrs in DESIGN.items():
        assert [a.name for a in ENTITIES[name].attributes] == COMMON + attrs.split()


def test_columns_are_unique_snake_case_and_key_is_id():
    for e in ENTITIES.values():
        cols = [a.column for a in e.attributes]
        assert len(cols) == len(set(cols))
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", c) for c in cols), cols
        assert e.key.name == "id" and not e.key.nullable


def test_money_and_rates_are_exact_decimals():
    money = {("Income", "monthlyAmount"), ("Expense", "monthlyAmount"), ("Debt", "balance"),
             ("Debt", "minimumPayment"), ("Debt", "apr"), ("Plan", "monthlyPayment"), ("Payment", "amount")}
    for ent, attr in money:
        t = entity(ent).by_name[attr].arrow_type
        assert pa.types.is_decimal(t), (ent, attr, t)
    assert entity("Debt").by_name["apr"].arrow_type == pa.decimal128(7, 4)


def test_pii_classes_follow_the_design():
    consumer = entity("Consumer")
    assert set(consumer.pii_columns) == {"first_name", "last_name", "email", "phone", "ssn_last4",
                                         "date_of_birth", "postal_code"}
    assert consumer.by_name["dateOfBirth"].pii is Pii.QUASI
    assert consumer.by_name["ssnLast4"].pii is Pii.DIRECT
    assert entity("Debt").pii_columns == ()


def test_unknown_entity_lists_the_known_ones():
    try:
        entity("Loan")
    except KeyError as e:
        assert "unknown entity 'Loan'" in str(e) and "Consumer" in str(e)
    else:
        raise AssertionError("expected KeyError")
