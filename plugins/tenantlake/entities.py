"""The entity names, importable at DAG parse time without pulling in pyarrow (contracts does)."""

ENTITY_NAMES = ("Consumer", "Counselor", "Application", "Income", "Expense", "Debt", "Plan", "Payment")
