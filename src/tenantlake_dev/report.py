"""The HTML report: one static file that opens offline (plotly.js inlined), drawn from the marts
and the lake's batch log. It reads only marts and counts, so it holds no PII.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

import plotly.graph_objects as go

from tenantlake import watermarks
from tenantlake.lake.read import read

CSS = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{margin-bottom:.2rem}.sub{color:#666;margin-top:0}table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:right}th:first-child,td:first-child{text-align:left}
.bad{color:#b00020;font-weight:600}section{margin:2rem 0}"""


def _figures(con) -> list[tuple[str, go.Figure]]:
    q = lambda sql: con.execute(sql).fetchall()  # noqa: E731 - a local shorthand
    figs = []
    kpis = q("SELECT agency_name, strftime(month, '%Y-%m') m, payments_collected, new_consumers "
             "FROM mart.agency_kpis_monthly ORDER BY m")
    fig = go.Figure()
    for agency in sorted({r[0] for r in kpis}):
        rows = [r for r in kpis if r[0] == agency]
        fig.add_bar(name=agency, x=[r[1] for r in rows], y=[float(r[2]) for r in rows])
    fig.update_layout(barmode="group", title="Payments collected by month", yaxis_title="USD",
                      xaxis_type="category")  # months are labels, not instants
    figs.append(("Agency KPIs by month", fig))

    top = q("SELECT creditor_name, total_balance, agencies, debts FROM mart.creditor_exposure "
            "ORDER BY total_balance DESC LIMIT 12")
    fig = go.Figure(go.Bar(x=[float(r[1]) for r in top][::-1], y=[r[0] for r in top][::-1], orientation="h",
                           customdata=[[r[2], r[3]] for r in top][::-1],
                           hovertemplate="%{y}: %{x:,.2f} USD<br>%{customdata[0]} agencies, %{customdata[1]} debts"))
    fig.update_layout(title="Creditor exposure across agencies (live debt balance)", xaxis_title="USD")
    figs.append(("Creditor exposure", fig))

    stages = ["leads", "applying", "counseled", "enrolled", "graduated", "dropped"]
    funnel = q("SELECT a.agency_name, " + ", ".join(f"f.{s}" for s in stages) +
               " FROM mart.enrolment_funnel f JOIN core.dim_agency a USING (tenant_id) ORDER BY 1")
    fig = go.Figure()
    for i, stage in enumerate(stages):
        fig.add_bar(name=stage, x=[r[0] for r in funnel], y=[r[i + 1] for r in funnel])
    fig.update_layout(barmode="stack", title="Consumers by stage (enrolment funnel)")
    figs.append(("Enrolment funnel", fig))

    cohorts = q("SELECT strftime(cohort_month, '%Y-%m') c, SUM(active), SUM(completed), SUM(cancelled), SUM(proposed) "
                "FROM mart.plan_outcomes_by_cohort WHERE cohort_month IS NOT NULL GROUP BY 1 ORDER BY 1")
    fig = go.Figure()
    for i, outcome in enumerate(["active", "completed", "cancelled", "proposed"]):
        fig.add_bar(name=outcome, x=[r[0] for r in cohorts], y=[r[i + 1] for r in cohorts])
    fig.update_layout(barmode="stack", title="Plan outcomes by start-month cohort (all agencies)",
                      xaxis_type="category")
    figs.append(("Plan outcomes by cohort", fig))
    return figs


def _health(lake, state, registry) -> str:
    """Per tenant and entity: batches published, rows, rows set aside, and the newest watermark."""
    log = read(lake, "ops", "batches")
    figures: dict[tuple[str, str], list[int]] = {}
    for r in log.to_pylist() if log is not None else []:
        if r["outcome"] == "published":
            f = figures.setdefault((r["tenant_id"], r["entity"]), [0, 0, 0])
            f[0], f[1], f[2] = f[0] + 1, f[1] + (r["rows"] or 0), f[2] + (r["quarantined"] or 0)
    rows = []
    for tenant in registry.tenants:
        marks = [watermarks.read(state, tenant.tenant_id, e) for e in tenant.tables]
        last = max((m.to_us for m in marks if m), default=None)  # the newest export of any table
        for entity in tenant.tables:
            batches, published, aside = figures.get((tenant.tenant_id, entity), [0, 0, 0])
            rate = aside / (published + aside) if published + aside else 0
            rows.append(f"<tr><td>{html.escape(tenant.tenant_id)}</td><td>{entity}</td><td>{batches}</td>"
                        f"<td>{published:,}</td><td class='{'bad' if aside else ''}'>{aside:,}</td>"
                        f"<td>{rate:.3%}</td><td>{watermarks.when(last)}</td></tr>")
    return ("<table><tr><th>tenant</th><th>entity</th><th>batches</th><th>rows</th><th>quarantined</th>"
            "<th>quarantine rate</th><th>last export (watermark)</th></tr>" + "".join(rows) + "</table>")


def _drift(con) -> str:
    """ops.drift_summary: kept in _extra (new attributes and fields) or coerced, per agency and table."""
    rows = con.execute("SELECT tenant_id, entity, path, dynamodb_type, what, rows, first_seen, last_seen "
                       "FROM ops.drift_summary ORDER BY tenant_id, entity, rows DESC").fetchall()
    if not rows:
        return "<p>No drift: every attribute seen is declared in the contracts.</p>"
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>" for r in rows)
    return ("<table><tr><th>tenant</th><th>entity</th><th>path</th><th>type</th><th>what</th><th>rows</th>"
            "<th>first seen</th><th>last seen</th></tr>" + cells + "</table>")


def build_report(warehouse_path: str, lake, state, registry, out: str | Path) -> Path:
    import duckdb

    con = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        figs = _figures(con)
        drift = _drift(con)
    finally:
        con.close()
    parts = []
    for i, (title, fig) in enumerate(figs):
        fig.update_layout(height=420, margin=dict(l=40, r=20, t=60, b=40))
        div = fig.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False, div_id=f"chart-{i}")
        parts.append(f"<section><h2>{html.escape(title)}</h2>{div}</section>")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>tenantlake report</title>"
            f"<style>{CSS}</style></head><body><h1>tenantlake</h1>"
            f"<p class='sub'>Cross-agency marts and pipeline health, built "
            f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}</p>" + "".join(parts) +
            f"<section><h2>Pipeline health</h2>{_health(lake, state, registry)}</section>"
            f"<section><h2>Drift: what the data carries that the contracts do not declare</h2>{drift}</section>"
            "</body></html>")
    out = Path(out)
    out.write_text(page, encoding="utf-8")
    return out
