"""Suites as data: expectations/<Entity>.json, checked when first used, resolved per batch.

Checking a suite needs Great Expectations only for expectations the vectorised evaluator does not
know (tenantlake.quality.fast): those GX itself must accept, so a typo fails with the file's name
instead of being dropped. A suite made only of known expectations is checked here, without
importing GX (3.6 s per process); tests hold every shipped suite against GX as well.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import orjson

from tenantlake.contracts import ENTITIES
from tenantlake.settings import REPO

SEVERITIES = ("fail", "quarantine", "warn")
FUTURE_TOLERANCE = timedelta(days=1)  # clocks drift; a day ahead of the export is tolerated
COLUMN_KEYS = ("column", "column_A", "column_B")
IN_SET = "expect_column_values_to_be_in_set"


class SuiteError(ValueError):
    """A suite file that cannot be used; the message names the file."""


class QualityError(RuntimeError):
    """A batch failed its audit (or the audit could not run): it is not published."""


def suites_folder() -> str:
    """expectations/ beside the code, or TENANTLAKE_EXPECTATIONS (read when a batch is audited)."""
    return os.environ.get("TENANTLAKE_EXPECTATIONS") or str(REPO / "expectations")


def name(exp: dict) -> str:
    """How results, reasons and logs name an expectation: its type and its columns."""
    kw = exp["kwargs"]
    cols = ",".join(str(kw[k]) for k in COLUMN_KEYS if k in kw)
    return f"{exp['type']}({cols})" if cols else exp["type"]


# Values a suite's $parameters take when a suite is checked (the real ones come per batch).
SAMPLE_PARAMS = {"$tenant_id": "t", "$expected_rows": 0, "$max_time": "2026-01-01T00:00:00+00:00",
                 "$max_date": "2026-01-01", "$window_from": "2025-12-31T23:00:00+00:00",
                 "$window_to": "2026-01-01T00:00:00+00:00"}


@cache
def load_suite(entity: str, folder: str) -> dict:
    """The suite for an entity, checked: every expectation has a type, kwargs and a severity, and
    is either known to the vectorised evaluator or accepted by GX."""
    from tenantlake.quality import fast

    path = Path(folder) / f"{entity}.json"
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise SuiteError(f"{path}: no suite for entity {entity}") from None
    except orjson.JSONDecodeError as e:
        raise SuiteError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("expectations"), list):
        raise SuiteError(f"{path}: a suite is {{\"name\": ..., \"expectations\": [...]}}")
    for i, exp in enumerate(doc["expectations"]):
        where = f"{path}: expectations[{i}]"
        if not isinstance(exp, dict) or not isinstance(exp.get("type"), str) or not isinstance(exp.get("kwargs"), dict):
            raise SuiteError(f"{where}: needs a type and kwargs")
        severity = (exp.get("meta") or {}).get("severity")
        if severity not in SEVERITIES:
            raise SuiteError(f"{where} ({exp['type']}): meta.severity must be one of {', '.join(SEVERITIES)}, "
                             f"not {severity!r}")
    try:
        checked = [{**e, "kwargs": resolve(e["kwargs"], SAMPLE_PARAMS)} for e in doc["expectations"]]
    except QualityError as e:
        raise SuiteError(f"{path}: {e}") from None
    unknown = [e for e in checked if fast.unsupported_config(e) is not None]
    if unknown:
        from tenantlake.quality.gx import gx_suite

        gx_suite(entity, unknown, str(path))
    return doc


def resolve(kwargs: dict, params: dict) -> dict:
    return {k: _resolve(v, params) for k, v in kwargs.items()}


def _resolve(value, params: dict):
    if isinstance(value, str) and value.startswith("$"):
        if value not in params:
            raise QualityError(f"suite parameter {value} has no value for this batch")
        found = params[value]
        return found() if callable(found) else found
    if isinstance(value, list):
        return [_resolve(v, params) for v in value]
    return value


def applies(exp: dict, kind: str) -> bool:
    return kind in (exp.get("meta") or {}).get("applies_to", [kind])


def resolve_suite(entity: str, params: dict, kind: str, folder: str | None = None) -> list[dict]:
    """The entity's expectations that apply to this kind of batch, with their $parameters filled."""
    doc = load_suite(entity, folder or suites_folder())
    return [{**e, "kwargs": resolve(e["kwargs"], params)} for e in doc["expectations"] if applies(e, kind)]


def params_for(tenant_id: str, expected_rows: int, export_time_us: int, window_from_us: int | None = None) -> dict:
    """The values a suite's $parameters take for one batch. An incremental export's window is
    [$window_from, $window_to): exportFromTime inclusive, exportToTime exclusive (other batches
    have no window; theirs is their export time)."""
    max_time = datetime.fromtimestamp(export_time_us / 1e6, UTC) + FUTURE_TOLERANCE
    window_from = export_time_us if window_from_us is None else window_from_us
    return {"$tenant_id": tenant_id, "$expected_rows": expected_rows,
            "$max_time": max_time.isoformat(), "$max_date": max_time.date().isoformat(),
            "$window_from": _iso(window_from), "$window_to": _iso(export_time_us)}


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000).isoformat()


def contract_mismatches(entity: str, folder: str | None = None) -> list[str]:
    """Where a suite's enum checks disagree with the contract (tenantlake.contracts): every
    attribute with `values` has one in-set check on its column, with exactly those values, whose
    severity is `quarantine` when the attribute is closed and `warn` when it is open (an unknown
    value is published as sent; drift is recorded, not punished); and a retired attribute has no
    not-null check that refuses rows (it is no longer sent: the check would quarantine every row of
    a newer app). An empty list when they agree."""
    contract = ENTITIES[entity]
    doc = load_suite(entity, folder or suites_folder())
    checks: dict[str, list[dict]] = {}
    for e in doc["expectations"]:
        if e["type"] == IN_SET:
            checks.setdefault(e["kwargs"].get("column"), []).append(e)
    out = []
    enums = {a.column: a for a in contract.attributes if a.values}
    for column, attr in enums.items():
        found = checks.get(column, [])
        if len(found) != 1:
            out.append(f"{entity}.{column}: {len(found)} in-set checks, the contract declares one enumeration")
            continue
        exp = found[0]
        if list(exp["kwargs"].get("value_set") or []) != list(attr.values):
            out.append(f"{entity}.{column}: value_set {exp['kwargs'].get('value_set')} != contract {list(attr.values)}")
        want = "quarantine" if attr.closed else "warn"
        if exp["meta"]["severity"] != want:
            out.append(f"{entity}.{column}: severity {exp['meta']['severity']!r}, but the attribute is "
                       f"{'closed' if attr.closed else 'open'} ({want!r})")
    for column in set(checks) - set(enums) - {"tenant_id"}:
        out.append(f"{entity}.{column}: an in-set check on a column the contract does not enumerate")
    retired = {a.column for a in contract.attributes if a.retired}
    for e in doc["expectations"]:
        if e["type"] == "expect_column_values_to_not_be_null" and e["kwargs"].get("column") in retired \
                and e["meta"]["severity"] != "warn":
            out.append(f"{entity}.{e['kwargs']['column']}: a not-null check ({e['meta']['severity']}) on a retired "
                       "attribute: drop it from the suite, or make it warn")
    return out
