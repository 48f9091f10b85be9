"""The audit in Write-Audit-Publish: each batch against its entity's Great Expectations suite.

Suites are data (expectations/<Entity>.json, read when a batch is audited, never at DAG parse
time). Each expectation's meta.severity says what a failure does:
  fail        the batch is not published (the task fails; the watermark stays)
  quarantine  the failing rows go to quarantine/ with the expectation as their reason
  warn        recorded in the results only
meta.applies_to (optional) limits an expectation to batch kinds (FULL_EXPORT, STREAM_PIPES, ...).
Run-time values enter kwargs as parameters: $tenant_id, $expected_rows, $max_time and $max_date.
expect_column_values_to_reference_published (tenantlake.references) checks ids against what is
already published for the tenant. Anything that goes wrong inside GX fails the batch: an audit
that did not run is not a pass.

Results are stored as JSON beside the lake with PII values removed: for a PII column only the row
positions of unexpected values are kept, never the values.
"""

from __future__ import annotations

import logging
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tenantlake.contracts import ENTITIES
from tenantlake.settings import REPO

if TYPE_CHECKING:  # GX is imported when a batch is audited, never when a DAG file is parsed
    from tenantlake.references import Lookup


def suites_folder() -> str:
    """expectations/ beside the code, or TENANTLAKE_EXPECTATIONS (read when a batch is audited)."""
    return os.environ.get("TENANTLAKE_EXPECTATIONS") or str(REPO / "expectations")
SEVERITIES = ("fail", "quarantine", "warn")
FUTURE_TOLERANCE = timedelta(days=1)  # clocks drift; a day ahead of the export is tolerated
COLUMN_KEYS = ("column", "column_A", "column_B")


class SuiteError(ValueError):
    """A suite file that cannot be used; the message names the file."""


class QualityError(RuntimeError):
    """A batch failed its audit (or the audit could not run): it is not published."""


@dataclass
class Audit:
    quarantined_rows: dict[int, str] = field(default_factory=dict)  # batch row -> reason
    failed: list[str] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)
    result: dict = field(default_factory=dict)  # GX's result JSON, PII values removed


def _name(exp: dict) -> str:
    kw = exp["kwargs"]
    cols = ",".join(str(kw[k]) for k in COLUMN_KEYS if k in kw)
    return f"{exp['type']}({cols})" if cols else exp["type"]


@cache
def load_suite(entity: str, folder: str) -> dict:
    """The suite for an entity, checked: every expectation has a type, kwargs and a severity."""
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
    # Unknown types and bad kwargs fail here, with the file's name: checked with sample values.
    sample = {"$tenant_id": "t", "$expected_rows": 0, "$max_time": "2026-01-01T00:00:00+00:00",
              "$max_date": "2026-01-01"}
    try:
        checked = [{**e, "kwargs": {k: _resolve(v, sample) for k, v in e["kwargs"].items()}}
                   for e in doc["expectations"]]
    except QualityError as e:
        raise SuiteError(f"{path}: {e}") from None
    _gx_suite(entity, checked, str(path))
    return doc


@cache
def _context():
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)  # no progress bars in task logs
    batch = ctx.data_sources.add_pandas("lake").add_dataframe_asset("batch").add_batch_definition_whole_dataframe("all")
    return ctx, batch


def _gx_suite(entity: str, expectations: list[dict], path: str):
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


def _resolve(value, params: dict):
    if isinstance(value, str) and value.startswith("$"):
        if value not in params:
            raise QualityError(f"suite parameter {value} has no value for this batch")
        found = params[value]
        return found() if callable(found) else found
    if isinstance(value, list):
        return [_resolve(v, params) for v in value]
    return value


def _columns(exps: list[dict]) -> set[str]:
    cols = {"_op"}
    for exp in exps:
        kw = exp["kwargs"]
        cols |= {kw[k] for k in COLUMN_KEYS if k in kw}
        cols |= set(kw.get("column_list", []))
    return cols


def frame(parts: list[str], columns: set[str]):
    """The batch's audited columns as one pandas frame with a `_row` position. Decimals become
    float64 for the audit only (GX on Decimal objects is ~4x slower, and range checks at the
    suites' bounds are exact in float64); the lake keeps exact decimals."""
    tables = [pq.read_table(p, columns=sorted(columns & set(pq.read_schema(p).names))) for p in parts]
    table = pa.concat_tables(tables) if tables else None
    if table is None:
        return None
    for i, f in enumerate(table.schema):
        if pa.types.is_decimal(f.type):
            table = table.set_column(i, pa.field(f.name, pa.float64()), pc.cast(table.column(i), pa.float64()))
    table = table.append_column("_row", pa.array(np.arange(table.num_rows)))
    return table.to_pandas()


def _redact(result: dict, pii: set[str]) -> dict:
    """Keep only row positions for unexpected values of PII columns (Data Docs show no PII)."""
    for r in result.get("results", []):
        kw = r.get("expectation_config", {}).get("kwargs", {})
        if not pii & {kw.get(k) for k in COLUMN_KEYS}:
            continue
        res = r.get("result") or {}
        for k in ("unexpected_list", "partial_unexpected_list", "partial_unexpected_counts",
                  "partial_unexpected_index_list", "observed_value", "details"):
            res.pop(k, None)
        res["unexpected_index_list"] = [{"_row": i.get("_row")} for i in res.get("unexpected_index_list") or []
                                        if isinstance(i, dict)]
    return result


def resolve_suite(entity: str, params: dict, kind: str, folder: str | None = None) -> list[dict]:
    """The entity's expectations that apply to this kind of batch, with their $parameters filled."""
    doc = load_suite(entity, folder or suites_folder())
    return [{**e, "kwargs": {k: _resolve(v, params) for k, v in e["kwargs"].items()}}
            for e in doc["expectations"] if kind in e.get("meta", {}).get("applies_to", [kind])]


def audit(entity: str, parts: list[str], params: dict, kind: str, folder: str | None = None,
          published: Lookup = lambda entity: set()) -> Audit:
    """Validate a staged batch (its local Parquet parts) against the entity's suite; `published`
    gives the ids already published for the tenant, by entity."""
    resolved = resolve_suite(entity, params, kind, folder)
    df = frame(parts, _columns(resolved))
    outcome = Audit()
    if df is None:
        return outcome
    from tenantlake.references import published_lookup

    try:
        ctx, batch = _context()
        suite = _gx_suite(entity, resolved, f"{entity}.json")
        with warnings.catch_warnings(), published_lookup(published), _each_configuration_built_once():
            warnings.simplefilter("ignore")
            res = batch.get_batch(batch_parameters={"dataframe": df}).validate(
                suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["_row"],
                                      "return_unexpected_index_query": False})
        result = res.to_json_dict()
    except QualityError:
        raise
    except Exception as e:  # noqa: BLE001 - fail closed, whatever GX raised
        raise QualityError(f"{entity}: the quality gate could not run ({type(e).__name__}: {str(e)[:300]})") from None
    for r in result["results"]:
        raised = _raised(r.get("exception_info") or {})
        if raised:
            raise QualityError(f"{entity}: {_name(r['expectation_config'])} raised inside GX: {raised[:300]}")
        if r["success"]:
            continue
        cfg = r["expectation_config"]
        name = _name({"type": cfg["type"], "kwargs": cfg["kwargs"]})
        severity = cfg["meta"]["severity"]
        rows = [i["_row"] for i in (r["result"].get("unexpected_index_list") or []) if isinstance(i, dict)]
        if severity == "fail" or (severity == "quarantine" and not rows):
            outcome.failed.append(f"{name}: {r['result'].get('unexpected_count', r['result'].get('observed_value'))}")
        elif severity == "quarantine":
            for row in rows:
                outcome.quarantined_rows.setdefault(int(row), name)
        else:
            outcome.warned.append(f"{name}: {r['result'].get('unexpected_count')}")
    outcome.result = _redact(result, set(ENTITIES[entity].pii_columns) if entity in ENTITIES else set())
    return outcome


@contextmanager
def _each_configuration_built_once():
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


def _raised(info: dict) -> str | None:
    """GX's exception_info, flat ({raised_exception, exception_message}) or per metric."""
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for v in info.values():
        if isinstance(v, dict) and v.get("raised_exception"):
            return str(v.get("exception_message"))
    return None


def params_for(tenant_id: str, expected_rows: int, export_time_us: int) -> dict:
    """The values a suite's $parameters take for one batch."""
    max_time = datetime.fromtimestamp(export_time_us / 1e6, UTC) + FUTURE_TOLERANCE
    return {"$tenant_id": tenant_id, "$expected_rows": expected_rows,
            "$max_time": max_time.isoformat(), "$max_date": max_time.date().isoformat()}


def published_ids(lake, tenant_id: str) -> Lookup:
    """The ids published for a tenant so far, by entity (read when a suite first asks)."""
    from tenantlake.lake import commits

    @cache
    def lookup(entity: str) -> set[str]:
        ids: set[str] = set()
        for c in commits(lake, entity, tenant_id):
            for f in c.files:
                ids.update(pq.read_table(pa.BufferReader(lake.get(f["key"])), columns=["id"])["id"].to_pylist())
        return ids

    return lookup


def build_data_docs(lake, out_dir: str | os.PathLike) -> str:
    """A Great Expectations Data Docs site from every stored (already PII-free) result, and an
    index of our own beside it; returns the path of that index.html."""
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    import tenantlake.references  # noqa: F401 - results name our expectations; GX must know them

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctx = gx.get_context(mode="file", project_root_dir=str(out_dir))
        fields = ("success", "results", "suite_name", "statistics", "meta", "suite_parameters")
        docs = []
        for key in lake.list("_quality/results/"):
            doc = orjson.loads(lake.get(key))
            if not doc.get("result"):
                continue
            docs.append(doc)
            result = ExpectationSuiteValidationResult(**{k: v for k, v in doc["result"].items() if k in fields})
            batch = doc["batch"]
            ctx.validation_results_store.set(ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=result.suite_name),
                run_id=RunIdentifier(run_name=str(doc["run_id"])),
                batch_identifier=f"{batch['tenant_id']}__{batch['export_id']}"), result)
        site = Path(ctx.build_data_docs()["local_site"].removeprefix("file://")).parent
    return str(_offline_index(Path(out_dir), site, docs))


def _offline_index(out_dir: Path, site: Path, docs: list[dict]) -> Path:
    """GX's own index fills itself in with scripts from CDNs, so offline it shows nothing. This one
    is plain HTML: a row per audited batch, linking to GX's page for it."""
    from html import escape

    pages = {p.stem: p for p in site.glob("validations/**/*.html")}  # named <tenant>__<export id>
    rows = []
    for doc in sorted(docs, key=lambda d: (d["batch"]["tenant_id"], d["batch"]["entity"], d["batch"]["export_id"])):
        b = doc["batch"]
        page = pages.get(f"{b['tenant_id']}__{b['export_id']}")
        link = f'<a href="{escape(str(page.relative_to(out_dir)))}">{escape(b["export_id"])}</a>' if page else ""
        status = "failed" if doc["failed"] else "passed"
        cells = [b["tenant_id"], b["entity"], b["export_date"], status, doc["quarantined"],
                 "; ".join(doc["warned"] + doc["failed"])]
        rows.append(f'<tr class="{status}">' + "".join(f"<td>{escape(str(c))}</td>" for c in cells)
                    + f"<td>{link}</td></tr>")
    index = out_dir / "index.html"
    index.write_text(
        "<!doctype html><meta charset=utf-8><title>tenantlake quality results</title>"
        "<style>body{font:14px sans-serif;margin:2em}td,th{padding:2px 8px;text-align:left}"
        "tr.failed{background:#fdd}</style><h1>Quality results by batch</h1>"
        "<table><tr><th>tenant</th><th>entity</th><th>export date</th><th>audit</th><th>rows set aside</th>"
        "<th>warnings and failures</th><th>GX page</th></tr>" + "".join(rows) + "</table>")
    return index


def summarise(lake) -> dict:
    """Per tenant and entity: batches audited, failed, rows set aside, and warnings by expectation."""
    out: dict[str, dict] = {}
    for key in lake.list("_quality/results/"):
        doc = orjson.loads(lake.get(key))
        b = doc["batch"]
        s = out.setdefault(b["tenant_id"], {}).setdefault(b["entity"], {
            "batches": 0, "failed": 0, "quarantined": 0, "warnings": {}})
        s["batches"] += 1
        s["failed"] += bool(doc["failed"])
        s["quarantined"] += doc["quarantined"]
        for w in doc["warned"]:
            name, _, count = w.rpartition(": ")
            s["warnings"][name] = s["warnings"].get(name, 0) + int(count or 0)
    return out
