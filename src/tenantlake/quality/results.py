"""What an audit decides and what it keeps: the outcome read from a GX-format result, the result
with personal data removed, the stored document, Data Docs and the per-tenant summary.

Both engines (GX and tenantlake.quality.fast) produce the same result JSON, and the outcome is
read from it by one function, so a batch's quarantined rows, failures and warnings cannot depend
on which engine audited it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tenantlake.contracts import ENTITIES, Pii
from tenantlake.quality.suites import COLUMN_KEYS, name

VALUE_KEYS = ("unexpected_list", "partial_unexpected_list", "partial_unexpected_counts",
              "partial_unexpected_index_list", "observed_value", "details", "unexpected_rows")
ROW = "_row"


@dataclass
class Audit:
    quarantined_rows: dict[int, str] = field(default_factory=dict)  # row of ITS batch -> reason
    failed: list[str] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)
    result: dict = field(default_factory=dict)  # GX-format result JSON, PII values removed
    error: str | None = None  # the audit could not run (it is also in `failed`: fail closed)

    def to_json(self) -> dict:
        """What a batch log stores of its audit (no PII: the result is already redacted)."""
        return {"failed": self.failed, "warned": self.warned, "quarantined": len(self.quarantined_rows),
                "result": self.result}


def personal_columns(entity: str) -> set[str]:
    """Columns whose values never enter a result: direct, quasi and reference identifiers."""
    contract = ENTITIES.get(entity)
    return {a.column for a in contract.attributes if a.pii is not Pii.NONE} if contract else set()


def failed_to_run(message: str, result: dict | None = None) -> Audit:
    return Audit(failed=[f"the audit could not run: {message}"], result=result or {}, error=message)


def outcome(entity: str, result: dict) -> Audit:
    """The audit's decision from a result: `fail` stops the batch; `quarantine` sets the
    unexpected rows aside (and fails the batch when it names none, e.g. a count); `warn` is
    recorded. An expectation that raised fails the batch: an audit that did not run is no pass."""
    out = Audit()
    for r in result["results"]:
        cfg = r["expectation_config"]
        label = name(cfg)
        raised = _raised(r.get("exception_info") or {})
        if raised is not None:
            return failed_to_run(f"{entity}: {label} raised inside GX: {raised[:300]}", result)
        if r["success"]:
            continue
        severity = cfg["meta"]["severity"]
        res = r["result"]
        rows = [i[ROW] for i in (res.get("unexpected_index_list") or []) if isinstance(i, dict)]
        if severity == "fail" or (severity == "quarantine" and not rows):
            out.failed.append(f"{label}: {res.get('unexpected_count', res.get('observed_value'))}")
        elif severity == "quarantine":
            for row in rows:
                out.quarantined_rows.setdefault(int(row), label)
        else:
            out.warned.append(f"{label}: {res.get('unexpected_count')}")
    out.result = result
    return out


def _raised(info: dict) -> str | None:
    """GX's exception_info, flat ({raised_exception, exception_message}) or per metric."""
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for v in info.values():
        if isinstance(v, dict) and v.get("raised_exception"):
            return str(v.get("exception_message"))
    return None


def redact(result: dict, personal: set[str]) -> dict:
    """The result as it may be stored and shown: for an expectation on a personal-data column
    only counts and row positions remain; no traceback anywhere, no exception text for those
    columns; no fingerprint of the data. Changes `result` in place and returns it."""
    meta = result.get("meta") or {}
    for k in ("batch_markers", "batch_spec"):
        meta.pop(k, None)
    for r in result.get("results", []):
        kw = r.get("expectation_config", {}).get("kwargs", {})
        touches = bool(personal & {kw.get(k) for k in COLUMN_KEYS})
        info = r.get("exception_info") or {}
        for v in [info, *(x for x in info.values() if isinstance(x, dict))]:
            if "exception_traceback" in v:
                v["exception_traceback"] = None
            if touches and v.get("exception_message"):
                v["exception_message"] = "(withheld: the expectation reads a personal-data column)"
        if not touches:
            continue
        res = r.get("result") or {}
        for k in VALUE_KEYS:
            res.pop(k, None)
        res["unexpected_index_list"] = [{ROW: i.get(ROW)} for i in res.get("unexpected_index_list") or []
                                        if isinstance(i, dict)]
    return result


def document(audit: Audit, *, tenant_id: str, entity: str, export_id: str, run_id: str,
             export_date: str | None = None) -> dict:
    """A stored result document: the batch it is about, its run, and its audit (Audit.to_json).
    build_data_docs and summarise read these, wherever they are kept (the batch log's `quality`
    column holds Audit.to_json(); the batch comes from the log row's own columns)."""
    return {"run_id": run_id, "batch": {"tenant_id": tenant_id, "entity": entity, "export_id": export_id,
                                        "export_date": export_date}, **audit.to_json()}


def build_data_docs(documents: Iterable[dict], out_dir: str | os.PathLike) -> str:
    """A Great Expectations Data Docs site from stored (already PII-free) result documents, and
    an index of our own beside it; returns the path of that index.html."""
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
        for doc in documents:
            if not doc.get("result"):
                continue
            docs.append(doc)
            batch = doc["batch"]
            values = {k: v for k, v in doc["result"].items() if k in fields}
            values["suite_name"] = values.get("suite_name") or batch["entity"]
            result = ExpectationSuiteValidationResult(**values)
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
        cells = [b["tenant_id"], b["entity"], b.get("export_date") or "", status, doc["quarantined"],
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


def summarise(documents: Iterable[dict]) -> dict:
    """Per tenant and entity: batches audited, failed, rows set aside, and warnings by expectation."""
    out: dict[str, dict] = {}
    for doc in documents:
        b = doc["batch"]
        s = out.setdefault(b["tenant_id"], {}).setdefault(b["entity"], {
            "batches": 0, "failed": 0, "quarantined": 0, "warnings": {}})
        s["batches"] += 1
        s["failed"] += bool(doc["failed"])
        s["quarantined"] += doc["quarantined"]
        for w in doc["warned"]:
            label, _, count = w.rpartition(": ")
            s["warnings"][label] = s["warnings"].get(label, 0) + int(count or 0)
    return out
