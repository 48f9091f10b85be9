"""expect_column_values_to_reference_published: a referential check for the quality gate.

A Payment's plan_id should name a Plan already published for the tenant. The ids published so far
grow with the tenant's history. Handed to expect_column_values_to_be_in_set as a value_set, GX
copied that list dozens of times per batch (it rebuilds each expectation's configuration on every
kwarg lookup): 3.3 s per Payment batch at 17k plans, and every result file carried the whole list.
Here the suite names only the entity; its ids are read once, when the metric runs, from the
lookup the audit installs, and never enter the result.

Importing this module registers the expectation and its metric with GX.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import ClassVar

from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    column_condition_partial,
)

Lookup = Callable[[str], set[str]]  # entity -> ids published for the batch's tenant
_lookup: ContextVar[Lookup | None] = ContextVar("tenantlake_reference_lookup", default=None)


@contextmanager
def published_lookup(lookup: Lookup) -> Iterator[None]:
    """Where the ids come from while one batch is validated."""
    token = _lookup.set(lookup)
    try:
        yield
    finally:
        _lookup.reset(token)


class ColumnValuesReferencePublished(ColumnMapMetricProvider):
    condition_metric_name = "column_values.reference_published"
    condition_value_keys = ("entity",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, entity, **kwargs):
        lookup = _lookup.get()
        if lookup is None:  # fail closed: the audit turns this into a failed batch
            raise RuntimeError(f"no published-id lookup installed for references to {entity}")
        return column.isin(lookup(entity))


class ExpectColumnValuesToReferencePublished(ColumnMapExpectation):
    """Expect each non-null value of the column to be the id of an `entity` row already published
    for the batch's tenant."""

    entity: str

    map_metric = "column_values.reference_published"
    args_keys = ("column", "entity")
    success_keys: ClassVar[tuple[str, ...]] = ("entity", "mostly")
