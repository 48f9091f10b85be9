"""One batch through Great Expectations: the reference, and the path for large batches and for
any expectation the vectorised evaluator does not know. Imported only when such a batch is
audited: GX costs ~3.6 s to import, and never at DAG parse time.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tenantlake.quality.suites import SuiteError

RESULT_FORMAT = {"result_format": "COMPLETE", "unexpected_index_column_names": ["_row"],
                 "return_unexpected_index_query": False}


@cache
def context():
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)  # no progress bars in task logs
    batch = ctx.data_sources.add_pandas("lake").add_dataframe_asset("batch").add_batch_definition_whole_dataframe("all")
    return ctx, batch


def gx_suite(entity: str, expectations: list[dict], path: str):
    """A GX ExpectationSuite; a configuration GX does not accept is a SuiteError naming `path`."""
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    import tenantlake.references  # noqa: F401 - registers our expectations with GX

    try:
        configs = [ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"], meta=e.get("meta") or {})
                   for e in expectations]
        for c in configs:
            c.to_domain_obj()  # an unknown type raises here; a suite would only log it and drop it
        suite = ExpectationSuite(name=entity, expectations=configs)
    except Exception as e:  # noqa: BLE001 - GX raises many kinds for a bad configuration
        raise SuiteError(f"{path}: {type(e).__name__}: {str(e)[:300]}") from None
    if len(suite.expectations) != len(configs):
        raise SuiteError(f"{path}: GX kept {len(suite.expectations)} of {len(configs)} expectations")
    return suite


def frame(table: pa.Table, columns: set[str]):
    """The batch's audited columns as one pandas frame with a `_row` position. Decimals become
    float64 for the audit only (GX on Decimal objects is ~4x slower, and range checks at the
    suites' bounds are exact in float64); the lake keeps exact decimals. The vectorised evaluator
    reads the same columns through the same cast (fast.audit_columns)."""
    table = table.select([c for c in table.column_names if c in columns])
    for i, f in enumerate(table.schema):
        if pa.types.is_decimal(f.type):
            table = table.set_column(i, pa.field(f.name, pa.float64()), pc.cast(table.column(i), pa.float64()))
    table = table.append_column("_row", pa.array(np.arange(table.num_rows)))
    return table.to_pandas()


POSITION = "tenantlake_position"  # meta key carrying an expectation's place in its suite through GX


def validate(entity: str, expectations: list[tuple[int, dict]], table: pa.Table, columns: set[str],
             published: Callable[[str], set[str]]) -> dict:
    """GX's result JSON for one batch (values not yet redacted), its results in suite order (GX
    reorders them; the audit's decisions, e.g. which reason a row set aside twice keeps, follow
    the suite's order whichever engine ran). Raises whatever GX raises."""
    from tenantlake.references import published_lookup

    df = frame(table, columns)
    _, batch = context()
    marked = [{**e, "meta": {**(e.get("meta") or {}), POSITION: i}} for i, e in expectations]
    suite = gx_suite(entity, marked, f"{entity}.json")
    with warnings.catch_warnings(), published_lookup(published), each_configuration_built_once():
        warnings.simplefilter("ignore")
        res = batch.get_batch(batch_parameters={"dataframe": df}).validate(suite, result_format=RESULT_FORMAT)
    result = res.to_json_dict()
    result["results"].sort(key=lambda r: r["expectation_config"]["meta"][POSITION])
    for r in result["results"]:
        del r["expectation_config"]["meta"][POSITION]
    return result


@contextmanager
def each_configuration_built_once():
    """GX 1.24 rebuilds an expectation's configuration from its pydantic fields on every kwarg
    lookup: ~1,400 rebuilds for an 11-expectation suite, 40% of a batch's audit. Nothing changes an
    expectation while its suite is validated, so within one validation each is built once (a test
    checks the results are the same with and without). One audit runs at a time in a process."""
    from great_expectations.expectations.expectation import Expectation

    rebuilt = Expectation.__dict__["configuration"]
    built: dict[int, tuple] = {}  # id -> (the expectation, kept alive so its id is not reused; its configuration)

    def configuration(self):
        hit = built.get(id(self))
        if hit is None or hit[0] is not self:
            hit = built[id(self)] = (self, rebuilt.fget(self))
        return hit[1]

    Expectation.configuration = property(configuration)
    try:
        yield
    finally:
        Expectation.configuration = rebuilt

