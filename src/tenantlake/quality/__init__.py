"""The audit in Write-Audit-Publish: each batch against its entity's suite, many batches at once.

Suites are data (expectations/<Entity>.json, read when a batch is audited, never at DAG parse
time). Each expectation's meta.severity says what a failure does:
  fail        the batch is not published (the task fails for it; the watermark stays)
  quarantine  the failing rows go to quarantine with the expectation as their reason
  warn        recorded in the results only
meta.applies_to (optional) limits an expectation to batch kinds (FULL_EXPORT, STREAM_PIPES, ...).
Run-time values enter kwargs as parameters: $tenant_id, $expected_rows, $max_time, $max_date, and
$window_from and $window_to (an incremental export's window).
expect_column_values_to_reference_published (tenantlake.references) checks ids against what is
already published for the tenant.

Enumerations follow the contract's drift policy (tenantlake.contracts): a value outside an open
enum is published as sent and warned; a closed attribute's unknown values are quarantined. The
suites' in-set checks say so in their severity, and a test holds them to the contract.

`audit_many` takes many batches of one entity. A batch whose expectations the vectorised
evaluator knows (tenantlake.quality.fast) is evaluated there, with the other batches, in one pass:
GX's semantics, per batch, at a fraction of a millisecond instead of ~70 ms for a tiny batch and
~25x GX's rows per second for a large one, and without importing GX (~3.6 s per process). A batch
with an expectation the evaluator does not know goes through one GX validation of its own, and
`engine="gx"` (or a `fast_max_rows` ceiling) sends batches to GX itself. Either way the result is
GX's result JSON, so Data Docs show both. Anything that goes wrong fails that batch
(closed): an audit that did not run is not a pass, and it never stops another batch.

Results never hold a value of a personal-data column (direct, quasi, reference): for those only
counts and row positions remain.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from typing import Literal

import orjson
import pyarrow as pa

from tenantlake.quality import fast
from tenantlake.quality.results import (
    Audit,
    build_data_docs,
    document,
    failed_to_run,
    outcome,
    personal_columns,
    redact,
    summarise,
)
from tenantlake.quality.suites import (
    FUTURE_TOLERANCE,
    SEVERITIES,
    QualityError,
    SuiteError,
    applies,
    contract_mismatches,
    load_suite,
    params_for,
    resolve,
    resolve_suite,
    suites_folder,
)

__all__ = [
    "FAST_MAX_ROWS", "FUTURE_TOLERANCE", "SEVERITIES", "Audit", "AuditBatch", "QualityError", "SuiteError",
    "audit_many", "build_data_docs", "contract_mismatches", "document", "load_suite", "params_for", "resolve_suite",
    "suites_folder", "summarise",
]

# No size ceiling by default: the evaluator gives GX's answer at any size (differential tests in
# tests/tenantlake/test_quality_fast.py, a 30,000-row batch among them), and GX's cost grows with
# the rows (about 6,500 rows/s against 160,000): sending batches over 10,000 rows to GX, as this
# once did, was half of a 1M-item ingest. A ceiling (rows) sends larger batches to GX.
FAST_MAX_ROWS: int | None = None
log = logging.getLogger(__name__)
Engine = Literal["auto", "fast", "gx"]


@dataclass
class AuditBatch:
    key: Hashable  # the caller's batch key
    tenant_id: str
    kind: str  # FULL_EXPORT | INCREMENTAL_EXPORT | STREAM_PIPES | STREAM_FIREHOSE
    rows: pa.Table  # the batch's decoded rows (the lake layout: tenantlake.formats.rows.lake_schema)
    params: dict  # params_for(tenant_id, expected_rows, export_time_us)


@cache
def _gx_version() -> str:
    return version("great_expectations")


def audit_many(entity: str, batches: list[AuditBatch], published: Callable[[str, str], set[str]], *,
               folder: str | None = None, fast_max_rows: int | None = FAST_MAX_ROWS,
               engine: Engine = "auto") -> dict[Hashable, Audit]:
    """Audit many batches of one entity, each by the suite's semantics on that batch alone.
    `published(tenant_id, entity)` gives the ids already published for a tenant (asked only when
    a referential check has a value to look up). `engine` forces one engine ("fast" still sends
    what the evaluator does not know to GX). A broken suite raises SuiteError; anything else that
    goes wrong fails only its batch."""
    keys = [b.key for b in batches]
    if len(set(keys)) != len(keys):
        raise ValueError("audit_many: batch keys must be unique")
    suite = _plan(entity, folder or suites_folder())
    out: dict[Hashable, Audit] = {}
    schemas: list[pa.Schema] = []
    quick: dict[int, list[tuple[AuditBatch, fast.Prepared]]] = {}
    slow: list[tuple[AuditBatch, list[tuple[int, dict]], pa.Table, set[str]]] = []
    why_not: dict[tuple, str | None] = {}  # (position, its kwargs when they vary, schema) -> why not fast
    for batch in batches:
        try:
            exps = [(i, {**e, "kwargs": resolve(e["kwargs"], batch.params)} if varies else e)
                    for i, e, varies in suite if applies(e, batch.kind)]
        except QualityError as e:
            out[batch.key] = failed_to_run(f"{entity}: {e}")
            continue
        columns = fast.audit_columns([e for _, e in exps])
        table = batch.rows.select([c for c in batch.rows.column_names if c in columns])
        # Batches are grouped by their columns' types (equal schemas: one group in practice).
        shape = next((i for i, s in enumerate(schemas) if s.equals(table.schema)), None)
        if shape is None:
            shape = len(schemas)
            schemas.append(table.schema)
        too_big = fast_max_rows is not None and table.num_rows > fast_max_rows
        if engine == "gx" or (engine == "auto" and too_big) or any(
                _unsupported(why_not, i, e, suite[i][2], table.schema, shape) for i, e in exps):
            slow.append((batch, exps, table, columns))
        else:
            quick.setdefault(shape, []).append((batch, fast.Prepared(table, batch.tenant_id, exps)))
    for group in quick.values():
        try:
            results = fast.evaluate([p for _, p in group], published)
        except Exception as e:  # noqa: BLE001 - a fault here must not stop every tenant: GX audits them
            log.warning("%s: the vectorised audit raised %s; %d batches go through GX", entity, type(e).__name__,
                        len(group))
            slow.extend((batch, p.expectations, p.table, fast.audit_columns([x for _, x in p.expectations]))
                        for batch, p in group)
            continue
        for (batch, _), res in zip(group, results, strict=True):
            out[batch.key] = _decide(entity, res, "tenantlake.quality.fast")
    for batch, exps, table, columns in slow:
        out[batch.key] = _validate_with_gx(entity, batch, exps, table, columns, published)
    return {k: out[k] for k in keys}


def columns_read(entity: str, folder: str | None = None) -> set[str]:
    """Every column the entity's suite reads, for any kind of batch: all an audit needs of its rows."""
    return fast.audit_columns([e for _, e, _ in _plan(entity, folder or suites_folder())])


@cache
def _plan(entity: str, folder: str) -> list[tuple[int, dict, bool]]:
    """The suite's expectations with their positions, and whether their kwargs take $parameters
    (the others are resolved once, not per batch)."""
    return [(i, e, "$" in orjson.dumps(e["kwargs"]).decode())
            for i, e in enumerate(load_suite(entity, folder)["expectations"])]


def _unsupported(memo: dict, position: int, exp: dict, varies: bool, schema: pa.Schema, shape: int) -> str | None:
    key = (position, orjson.dumps(exp["kwargs"]) if varies else None, shape)
    if key not in memo:
        memo[key] = fast.unsupported_config(exp) or fast.unsupported_data(exp, schema)
    return memo[key]


def _validate_with_gx(entity: str, batch: AuditBatch, exps: list[tuple[int, dict]], table: pa.Table,
                      columns: set[str], published: Callable[[str, str], set[str]]) -> Audit:
    from tenantlake.quality import gx

    try:
        result = gx.validate(entity, exps, table, columns, lambda e: published(batch.tenant_id, e))
    except Exception as e:  # noqa: BLE001 - fail closed, whatever GX raised
        withheld = bool(personal_columns(entity) & columns)  # its text may quote a value
        return failed_to_run(f"{entity}: the quality gate could not run ({type(e).__name__}"
                             + (")" if withheld else f": {str(e)[:300]})"))
    return _decide(entity, result, "great_expectations")


def _decide(entity: str, result: dict | str, engine: str) -> Audit:
    if isinstance(result, str):
        return failed_to_run(result)
    result["suite_name"] = entity
    result["meta"] = {**(result.get("meta") or {}), "great_expectations_version": _gx_version(), "audited_by": engine}
    # Redacted first: an error's text on a personal column must not reach `failed` (logs) either.
    return outcome(entity, redact(result, personal_columns(entity)))
