"""`tenantlake status`: one row per tenant and table, worst first, for a person or a script.

Exit status 1 when any row is late or failing (so it can gate a script), 0 otherwise, 2 for a
mistake in what was asked (an unknown tenant, an unreadable configuration).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import orjson

from tenantlake.arguments import hours

if TYPE_CHECKING:  # the figures (pyarrow, the lake) load when a status is asked for, not with the CLI
    from tenantlake.ops.health import TableHealth

PROBLEMS = frozenset({"failing", "late"})  # the states that fail `status` and the freshness check

# The keys of `--json`, in this order: a contract with the scripts that read it.
JSON_KEYS = ("tenant_id", "entity", "state", "lag_seconds", "objective_seconds", "rows_loaded", "rows_quarantined",
             "drift_count", "cost_usd_month", "error")


def duration(seconds: int | None) -> str:
    """'2d 3h', '26h 5m', '45m', or '-' for none."""
    if seconds is None:
        return "-"
    sign, seconds = ("-" if seconds < 0 else ""), abs(int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days >= 2:
        return f"{sign}{days}d {hours}h"
    hours += days * 24
    return f"{sign}{hours}h {minutes}m" if hours else f"{sign}{minutes}m"


def json_rows(rows: list[TableHealth]) -> list[dict]:
    """`error`: why a failing row fails, as the text table prints it (null for the other states)."""
    return [{k: getattr(r, k) if k != "error" else reason(r) for k in JSON_KEYS} for r in rows]


def reason(r: TableHealth) -> str | None:
    return r.error[:300] if r.error and r.state == "failing" else None


def last_run(r: TableHealth) -> str:
    if r.last_attempt_at is None:
        return "-"
    return f"{r.last_attempt_at:%Y-%m-%d %H:%M} {r.last_outcome}"


def text_table(rows: list[TableHealth]) -> str:
    """A fixed-width table; a failing row's reason follows it on its own line."""
    head = ("TENANT", "ENTITY", "STATE", "LAG", "OBJECTIVE", "LAST RUN (UTC)", "LOADED 24H", "QUARANT. 24H",
            "DRIFT", "COST/MONTH")
    lines = [(r.tenant_id, r.entity, r.state.upper() if r.state in PROBLEMS else r.state, duration(r.lag_seconds),
              duration(r.objective_seconds), last_run(r), f"{r.rows_loaded:,}", f"{r.rows_quarantined:,}",
              str(r.drift_count), f"${r.cost_usd_month:,.2f}") for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    for r, line in zip(rows, lines, strict=True):
        out.append("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
        if reason(r):
            out.append(f"    ! {reason(r)}")
    return "\n".join(out)


def summary_line(rows: list[TableHealth]) -> str:
    counts = {s: sum(r.state == s for r in rows) for s in ("failing", "late", "never", "ok")}
    return (f"{len(rows)} tables of {len({r.tenant_id for r in rows})} tenants: "
            + ", ".join(f"{n} {s}" for s, n in counts.items() if n))


def add_status_parser(subparsers) -> argparse.ArgumentParser:
    """`tenantlake status [--json] [--tenant ID ...] [--entity NAME ...] [--window-hours N]`."""
    p = subparsers.add_parser("status", help="freshness, state, rows, drift and cost per tenant and table, worst "
                                             "first (exit 1 when any is late or failing)")
    p.add_argument("--json", action="store_true", help="print the rows as a JSON list of objects")
    p.add_argument("--tenant", action="append", default=[], help="only this tenant (repeatable)")
    p.add_argument("--entity", action="append", default=[], help="only this entity (repeatable)")
    p.add_argument("--window-hours", type=hours(positive=True), default=24.0,
                   help="the span rows loaded / quarantined and drift are counted over (default: 24)")
    p.set_defaults(run=_exit_with_status)
    return p


def _exit_with_status(args) -> None:
    # tenantlake.cli prints what a command returns and exits 0; status owns its output and its
    # exit status, which cli.main passes on from SystemExit.
    raise SystemExit(status_command(args))


def status_rows(args, runtime=None, now: datetime | None = None) -> list[TableHealth]:
    from tenantlake.ops.health import collect

    if runtime is None:
        from tenantlake.connections import runtime as airflow_runtime

        runtime = airflow_runtime()
    registry = runtime.registry
    known = set(registry.by_id) | {e.tenant_id for e in registry.invalid if e.tenant_id}
    unknown = sorted(set(args.tenant) - known)
    if unknown:
        raise ValueError(f"--tenant {', '.join(unknown)}: not in the registry")
    from tenantlake.contracts import ENTITIES

    unknown = sorted(set(args.entity) - set(ENTITIES))
    if unknown:  # it showed "0 tables" and exit 0, as if all were well
        raise ValueError(f"--entity {', '.join(unknown)}: no such entity (known: {', '.join(ENTITIES)})")
    rows, _ = collect(runtime.lake, runtime.state, registry, now=now or datetime.now(UTC),
                      window=timedelta(hours=args.window_hours))
    return [r for r in rows if (not args.tenant or r.tenant_id in args.tenant)
            and (not args.entity or r.entity in args.entity)]


def status_command(args, runtime=None, now: datetime | None = None) -> int:
    """Print the rows (a table, or JSON with --json); 1 when any is late or failing, 2 when the
    question itself is wrong."""
    from tenantlake.ops.config import ConfigError
    from tenantlake.registry import RegistryError

    try:
        rows = status_rows(args, runtime, now)
    except (ValueError, ConfigError, RegistryError) as e:
        print(f"tenantlake status: {e}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(orjson.dumps(json_rows(rows), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(text_table(rows))
        print(summary_line(rows), file=sys.stderr)
    return 1 if any(r.state in PROBLEMS for r in rows) else 0
