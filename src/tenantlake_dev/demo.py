"""`make demo`: the whole main job on the embedded default, with real Airflow and no server.

Simulates the demo fleet, then runs the DAGs with `airflow dags test` against a local
AIRFLOW_HOME (SQLite metadata), printing progress, and ends with what happened per agency.
Everything lives under <repo>/.demo and <repo>/.airflow; each run starts from a clean .demo.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson

from tenantlake.settings import REPO

DEMO_DAY = "2026-11-04"  # the simulated history runs 2026-11-01 .. 11-04; the run covers it all
CONSUMERS_PER_AGENCY = 3300  # about 200k items across 5 agencies


def _env(home: Path) -> dict:
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(REPO / ".airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "TENANTLAKE_HOME": str(home),
        "TENANTLAKE_MODE": "local",
    })
    return env


def _airflow(env: dict, *args: str, log: Path | None = None, on_line=None) -> int:
    cmd = [str(Path(sys.executable).parent / "airflow"), *args]
    if log is None:
        return subprocess.run(cmd, env=env, capture_output=True, text=True).returncode
    with log.open("w") as out, subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                 text=True) as proc:
        for line in proc.stdout:
            out.write(line)
            if on_line:
                on_line(line)
    return proc.returncode


def _progress(started: float):
    done = re.compile(r"\[DAG TEST\] end task task_id=(\S+) map_index=(-?\d+)")

    def on_line(line: str) -> None:
        m = done.search(line)
        if m:
            task, index = m.groups()
            suffix = f"[{index}]" if index != "-1" else ""
            print(f"  {time.perf_counter() - started:6.1f}s  done {task}{suffix}", flush=True)
    return on_line


def _say(text: str = "") -> None:
    print(text, flush=True)


def run_demo(home: Path | None = None) -> int:
    from tenantlake.registry import load_registry
    from tenantlake_dev.simulate import FleetSpec, simulate_fleet

    home = home or REPO / ".demo"
    shutil.rmtree(home, ignore_errors=True)
    env = _env(home)
    registry = load_registry()
    started = time.perf_counter()

    _say(f"1/4  Simulating {len(registry.enabled)} agencies' DynamoDB tables (seeded, AWS export layout)")
    sim = simulate_fleet(registry.enabled, FleetSpec(consumers=CONSUMERS_PER_AGENCY, days=3, defects=3), home)
    _say(f"     {sim['items']:,} items, {sim['changes']:,} changes, {sim['exports']} exports landed in "
         f"{sim['seconds']}s -> {home / 'landing'}")
    _say("     (with a few known-bad items per agency, listed in truth/defects.jsonl, for the quality gate)")

    _say("2/4  Preparing Airflow (local SQLite metadata database, no server)")
    if _airflow(env, "db", "migrate") != 0:
        _say("     airflow db migrate failed; see `airflow db migrate` output")
        return 1
    _airflow(env, "pools", "set", "tenant_exports", "8", "concurrent tenant pulls")

    rc = 0
    for step, dag_id in (("3/4", "tenant_exports"), ("4/4", "warehouse_load")):
        _say(f"{step}  Running DAG {dag_id} for {DEMO_DAY} with `airflow dags test`")
        log = home / f"{dag_id}.log"
        t = time.perf_counter()
        rc = rc or _airflow(env, "dags", "test", dag_id, DEMO_DAY, log=log, on_line=_progress(t))
        _say(f"     finished in {time.perf_counter() - t:.1f}s (exit {rc}); full log: {log}")

    from tenantlake.runtime import Runtime

    os.environ.update({k: v for k, v in env.items() if k.startswith("TENANTLAKE_")})
    runtime = Runtime.from_env()
    docs = _data_docs(runtime, home / "data_docs")
    summary = _summary(home)
    _say()
    _say(f"{'agency':12} {'items exported':>15} {'quarantined':>12} {'rows in raw/':>13}  "
         "freshness (stalest table's watermark)")
    for tid, s in sorted(summary["tenants"].items()):
        _say(f"{tid:12} {s['items']:>15,} {s['quarantined']:>12,} {s['rows']:>13,}  {s['freshness']}")
    if summary["failed"]:
        _say(f"\nFailed tenant tables: {', '.join(summary['failed'])}")
    _marts(home)
    report = None
    if (home / "warehouse.duckdb").exists():
        from tenantlake_dev.report import build_report

        report = build_report(str(home / "warehouse.duckdb"), runtime.lake, runtime.state, registry,
                              home / "report.html")
    _say(f"\nLake (Apache Iceberg tables: tenantlake_raw, _quarantine, _protected, _ops; SQLite catalog "
         f"{home / 'lake' / '_catalog' / 'iceberg.db'}): {home / 'lake'}")
    _say(f"Warehouse (DuckDB; schemas core, mart, ops, and lake_protected: the lake without PII): "
         f"{home / 'warehouse.duckdb'}")
    _say(f"Quarantine (rows set aside, with reasons): the tenantlake_quarantine tables, {home / 'lake'}")
    _say(f"Data Docs (quality results, no PII): {docs}")
    if report:
        _say(f"HTML report (open it in a browser, works offline): {report}")
    _say(f"Ground truth from the simulator: {home / 'truth'}")
    _say(f"Total wall time: {time.perf_counter() - started:.1f}s")
    return rc


def _marts(home: Path) -> None:
    """A few figures from the marts, read back from the warehouse file."""
    import duckdb

    path = home / "warehouse.duckdb"
    if not path.exists():
        return
    con = duckdb.connect(str(path), read_only=True)
    _say(f"\n{'agency':12} {'live debts':>10} {'debt balance':>16} {'enrolled in plans':>18} {'active plans':>13}")
    for tid, n, bal, enr, act in con.execute(
            "SELECT tenant_id, live_debts, debt_balance, enrolled_debt, active_plans FROM mart.agency_snapshot "
            "ORDER BY tenant_id").fetchall():
        _say(f"{tid:12} {n:>10,} {bal:>16,.2f} {enr:>18,.2f} {act:>13,}")
    top = con.execute("SELECT creditor_name, agencies, total_balance FROM mart.creditor_exposure "
                      "ORDER BY total_balance DESC LIMIT 3").fetchall()
    _say("Top creditor exposure across agencies: " + "; ".join(f"{c} {b:,.2f} ({a} agencies)" for c, a, b in top))
    con.close()


def _data_docs(runtime, out: Path) -> str:
    """Data Docs from the audit results kept in the lake's batch log (no PII: redacted at audit)."""
    import orjson

    from tenantlake import quality
    from tenantlake.lake.read import read

    log = read(runtime.lake, "ops", "batches")
    documents = []
    for r in log.to_pylist() if log is not None else []:
        if r["quality"]:
            doc = orjson.loads(r["quality"])
            documents.append({**doc, "batch": {k: r[k] for k in ("tenant_id", "entity", "export_id", "kind")}})
    return quality.build_data_docs(documents, out)


def _summary(home: Path) -> dict:
    from tenantlake import watermarks
    from tenantlake.registry import load_registry
    from tenantlake.storage import LocalStore

    lake = LocalStore(home / "lake")
    runs = sorted((home / "lake" / "_state" / "runs").glob("*/summary.json"))
    if not runs:
        return {"tenants": {}, "failed": ["(no run summary was written)"]}
    run = orjson.loads(runs[-1].read_bytes())
    registry = load_registry()
    out = {}
    for tid, s in run["tenants"].items():
        tables = registry.tenant(tid).tables
        out[tid] = {**s, "freshness": watermarks.when(watermarks.stalest(lake, tid, tables))}
    return {"tenants": out, "failed": run["failed"]}
