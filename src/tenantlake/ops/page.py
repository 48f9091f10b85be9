"""The tenant health page: the `status` rows as an HTML table, and a freshness chart per tenant.

One self-contained page (inline CSS and SVG, no script, nothing fetched), so it renders offline,
inside Airflow's iframe and in a headless browser alike.

The chart: for each tenant, its freshness over the last days, read from the batch log — at each
hour, the watermark of each of its tables is the end of the latest window published by then, and
the tenant's point is its worst table's lag as a share of that table's objective (1 = at the
objective, above = late). The dashed line is the objective.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from datetime import datetime, timedelta
from html import escape

from tenantlake.ops.health import TableHealth
from tenantlake.ops.status import PROBLEMS, duration, last_run

CHART_DAYS = 7
CHART_W, CHART_H, PAD = 320, 90, 4
COLOURS = {"failing": "#f4b6b6", "late": "#fde2b8", "never": "#e6e6e6", "ok": "#d9ead3"}


def freshness_history(batches, objectives: dict[tuple[str, str], int], now: datetime,
                      days: int = CHART_DAYS) -> dict[str, list[tuple[datetime, float | None]]]:
    """Per tenant, hourly points (time, worst lag over objective, None before any table published)."""
    marks: dict[tuple[str, str], list[tuple[datetime, datetime]]] = defaultdict(list)
    if batches is not None:
        for r in batches.select(["tenant_id", "entity", "outcome", "logged_at", "export_time"]).to_pylist():
            key = (r["tenant_id"], r["entity"])
            if r["outcome"] == "published" and r["export_time"] is not None and key in objectives:
                marks[key].append((r["logged_at"], r["export_time"]))
    steps = [now - timedelta(hours=h) for h in range(days * 24, -1, -1)]
    out: dict[str, list[tuple[datetime, float | None]]] = {}
    for (tenant_id, _), _objective in sorted(objectives.items()):
        out.setdefault(tenant_id, [(t, None) for t in steps])
    for key, series in marks.items():
        series.sort()
        logged = [s[0] for s in series]
        running, best = [], None
        for _, mark in series:  # a watermark only moves forward (a replayed window never moves it back)
            best = mark if best is None or mark > best else best
            running.append(best)
        points = out[key[0]]
        for i, (t, worst) in enumerate(points):
            n = bisect.bisect_right(logged, t)
            if n == 0:
                continue
            ratio = (t - running[n - 1]).total_seconds() / objectives[key]
            points[i] = (t, ratio if worst is None else max(worst, ratio))
    return out


def _chart(points: list[tuple[datetime, float | None]]) -> str:
    values = [v for _, v in points if v is not None]
    top = max([1.5, *values]) * 1.1
    n = len(points) - 1 or 1

    def xy(i: int, v: float) -> str:
        return f"{PAD + i * (CHART_W - 2 * PAD) / n:.1f},{CHART_H - PAD - v / top * (CHART_H - 2 * PAD):.1f}"

    runs, current = [], []
    for i, (_, v) in enumerate(points):
        if v is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(xy(i, v))
    if current:
        runs.append(current)
    y1 = CHART_H - PAD - 1 / top * (CHART_H - 2 * PAD)
    lines = "".join(f'<polyline class="lag" points="{" ".join(r)}"/>' for r in runs)
    return (f'<svg class="chart" width="{CHART_W}" height="{CHART_H}" viewBox="0 0 {CHART_W} {CHART_H}" role="img">'
            f'<rect x="0" y="0" width="{CHART_W}" height="{CHART_H}" class="frame"/>'
            f'<line class="objective" x1="{PAD}" x2="{CHART_W - PAD}" y1="{y1:.1f}" y2="{y1:.1f}"/>{lines}</svg>')


STYLE = """
body { font: 14px system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 20px; margin: 0 0 4px; } .summary { color: #555; margin: 0 0 12px; }
table#tenant-health { border-collapse: collapse; margin-bottom: 24px; }
#tenant-health th, #tenant-health td { padding: 4px 10px; border-bottom: 1px solid #ccc; text-align: left; }
#tenant-health td.n { text-align: right; font-variant-numeric: tabular-nums; }
""" + "".join(f"#tenant-health tr.{s} td {{ background: {c}; }}\n" for s, c in COLOURS.items()) + """
.charts { display: flex; flex-wrap: wrap; gap: 16px; } .tenant h2 { font-size: 14px; margin: 0 0 4px; }
svg .frame { fill: #fafafa; stroke: #ccc; } svg .objective { stroke: #c00; stroke-dasharray: 4 3; }
svg .lag { fill: none; stroke: #1f5fa8; stroke-width: 1.5; } .error { color: #900; font-size: 12px; }
"""


def render(rows: list[TableHealth], history: dict[str, list], now: datetime) -> str:
    """The page's HTML."""
    counts = {s: sum(r.state == s for r in rows) for s in ("failing", "late", "never", "ok")}
    body = []
    for r in rows:
        cells = [escape(r.tenant_id), escape(r.entity), escape(r.state), duration(r.lag_seconds),
                 duration(r.objective_seconds), escape(last_run(r))]
        numbers = [f"{r.rows_loaded:,}", f"{r.rows_quarantined:,}", str(r.drift_count), f"${r.cost_usd_month:,.2f}"]
        title = f' title="{escape(r.error)}"' if r.error else ""
        attrs = f'class="{r.state}" data-tenant="{escape(r.tenant_id)}" data-entity="{escape(r.entity)}"{title}'
        tds = "".join(f"<td>{c}</td>" for c in cells) + "".join(f'<td class="n">{c}</td>' for c in numbers)
        body.append(f"<tr {attrs}>{tds}</tr>")
    charts = []
    worst = {}
    for r in rows:
        worst.setdefault(r.tenant_id, r)  # rows are worst first
    for tenant_id in sorted(history):
        w = worst.get(tenant_id)
        note = f"{escape(w.entity)}: {escape(w.state)}, lag {duration(w.lag_seconds)}" if w else ""
        charts.append(f'<div class="tenant" data-tenant="{escape(tenant_id)}"><h2>{escape(tenant_id)} '
                      f'<small>{note}</small></h2>{_chart(history[tenant_id])}</div>')
    problems = sum(counts[s] for s in PROBLEMS)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tenant health</title><style>{STYLE}</style></head>
<body>
<h1>Tenant health</h1>
<p class="summary" data-problems="{problems}">{len(rows)} tables of {len(worst)} tenants at {now:%Y-%m-%d %H:%M} UTC:
{", ".join(f"{n} {s}" for s, n in counts.items() if n) or "nothing registered"}. Worst first; the same rows as
<code>tenantlake status</code>.</p>
<table id="tenant-health">
<thead><tr><th>Tenant</th><th>Entity</th><th>State</th><th>Lag</th><th>Objective</th><th>Last run (UTC)</th>
<th>Loaded 24h</th><th>Quarantined 24h</th><th>Drift</th><th>Cost / month</th></tr></thead>
<tbody>
{chr(10).join(body)}
</tbody></table>
<h1>Freshness, last {CHART_DAYS} days</h1>
<p class="summary">Each tenant's worst table: lag as a share of its objective (dashed line: the objective).</p>
<div class="charts">
{chr(10).join(charts)}
</div>
</body></html>
"""


def page(lake, state, registry, now: datetime) -> str:
    """The page for a lake, its state and a registry, as of `now`."""
    from tenantlake.ops.health import collect

    rows, batches = collect(lake, state, registry, now=now)
    objectives = {(r.tenant_id, r.entity): r.objective_seconds for r in rows}
    return render(rows, freshness_history(batches, objectives, now), now)
