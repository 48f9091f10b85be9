"""Ops figures: health states, window figures, cost (hand-computed), status, the lake twin, config."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import orjson
import pyarrow as pa
import pytest
import yaml

from tenantlake.ops import config as ops_config
from tenantlake.ops.config import ConfigError, load_objectives, load_prices
from tenantlake.ops.costs import BATCH_COLUMNS, batch_costs, tenant_cost_monthly
from tenantlake.ops.health import collect
from tenantlake.ops.status import JSON_KEYS, add_status_parser, duration, status_command
from tenantlake.ops.tables import ops_tables, read_twin, refresh_ops
from tests.tenantlake.test_ops_fleet import GIB, LATE_BY, LATE_ENTITY, LATE_TENANT, build_fleet, use_fleet

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)

# Prices written down here, so the expected figures below can be computed by hand from them. AWS
# charges the same for both kinds of export; here they differ, so a swapped price shows.
PRICES = {
    "version": 1, "currency": "USD", "region": "us-east-1", "bytes_per_gb": GIB,
    "prices": {
        name: {"price": price, "unit": unit, "what": name, "source": "https://example.test/prices", "read": read,
               "checked": True}
        for name, price, unit, read in [
            ("dynamodb_export_full", 0.10, "USD per GB", "2026-11-30"),
            ("dynamodb_export_incremental", 0.125, "USD per GB", "2026-11-30"),
            ("s3_standard_storage", 0.023, "USD per GB-month", "2026-11-29"),
            ("redshift_serverless_compute", 0.375, "USD per RPU-hour", "2026-11-30"),
            ("redshift_serverless_minimum_charge", 60, "seconds", "2026-11-30"),
        ]},
    "deployment": {"warehouse_base_rpu": 8},
}
# One warehouse load at least: 0.375 $/RPU-h x 8 RPU x 60 s / 3600 s/h = $0.05.
LOAD_RUN = 0.05


@pytest.fixture(scope="module")
def prices(tmp_path_factory):
    path = tmp_path_factory.mktemp("prices") / "prices.yaml"
    path.write_text(yaml.safe_dump(PRICES))
    return load_prices(path)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    return build_fleet(tmp_path_factory.mktemp("ops-fleet"), NOW)


@pytest.fixture(scope="module")
def health(fleet, prices):
    rows, _ = collect(fleet.lake, fleet.state, fleet.registry, now=NOW, prices=prices, objectives=load_objectives())
    return {(r.tenant_id, r.entity): r for r in rows}, rows


# ---- health ------------------------------------------------------------------------------------

def test_each_table_gets_its_state_worst_first(health):
    _, rows = health
    assert [(r.tenant_id, r.entity, r.state) for r in rows] == [
        ("agency-003", "Debt", "failing"),  # failing: lag 1h of 26h
        ("agency-003", "Plan", "failing"),  # failing: never published, so no lag
        ("agency-002", "Debt", "late"),
        ("agency-004", "Debt", "never"),
        ("agency-005", "Debt", "ok"),  # 28h of its own 30h: 0.93
        ("agency-001", "Plan", "ok"),  # 3h of 8h: 0.375
        ("agency-001", "Debt", "ok"),  # 2h of 26h: 0.08
    ]


def test_the_late_table_says_by_how_much(health):
    by_key, _ = health
    late = by_key[(LATE_TENANT, LATE_ENTITY)]
    assert (late.lag_seconds, late.objective_seconds, late.late_by_seconds) == (29 * 3600, 26 * 3600, 3 * 3600)
    assert timedelta(seconds=late.late_by_seconds) == LATE_BY
    assert late.watermark == NOW - timedelta(hours=29)
    assert by_key[("agency-001", "Debt")].late_by_seconds is None


def test_failing_comes_from_the_batch_log_or_the_latest_run_summary(health):
    by_key, _ = health
    debt, plan = by_key[("agency-003", "Debt")], by_key[("agency-003", "Plan")]
    assert (debt.last_outcome, debt.last_run_id, debt.error) == ("failed", "run-c", "ExportError: data/abc.json.gz: MD5 mismatch")
    assert debt.last_published_at == NOW - timedelta(hours=3) and debt.last_export_id == "inc-301"
    assert plan.error == "AccessDenied: the role refused AssumeRole"
    # a failure that left no batch: its run is the table's last run (not an older batch, nor none)
    assert (plan.last_outcome, plan.last_run_id, plan.last_attempt_at) == ("failed", "run-c", NOW - timedelta(minutes=90))
    # run-b, an older run, listed agency-001 Plan as failed: only the latest run counts
    assert by_key[("agency-001", "Plan")].state == "ok"


def test_a_registry_override_sets_the_objective(health):
    by_key, _ = health
    assert by_key[("agency-005", "Debt")].objective_seconds == 30 * 3600  # registry: freshness {Debt: 30h}
    assert by_key[("agency-002", "Debt")].objective_seconds == 26 * 3600  # config/freshness.yaml's Debt
    assert by_key[("agency-001", "Plan")].objective_seconds == 8 * 3600  # config/freshness.yaml's Plan


def test_window_figures_count_the_last_day_only(health):
    by_key, _ = health
    r = by_key[("agency-001", "Debt")]
    # inc-001 (3h ago) and inc-002 (2h ago); the FULL export of 48h ago is outside the 24h window
    assert (r.batches, r.rows_in, r.rows_loaded, r.rows_quarantined) == (2, 120 + 40, 118 + 40, 2)
    assert r.drift_count == 2  # nickname (twice) and bureau.score: distinct paths
    assert r.bytes_exported == 2 * GIB + GIB // 4 + GIB // 8  # all time
    assert r.bytes_stored == GIB + GIB // 8 + GIB // 16
    assert by_key[("agency-002", "Debt")].rows_loaded == 0  # its one batch is 29h old


def test_an_invalid_registry_entry_shows_as_failing_for_each_of_its_tables(fleet, prices):
    doc = yaml.safe_load(fleet.registry_path.read_text())
    doc["tenants"][1]["region"] = "mars-1"
    from tenantlake.registry import parse_registry

    registry = parse_registry(yaml.safe_dump(doc))
    rows, _ = collect(fleet.lake, fleet.state, registry, now=NOW, prices=prices, objectives=load_objectives())
    [bad] = [r for r in rows if r.tenant_id == "agency-002"]
    assert (bad.entity, bad.state) == ("Debt", "failing")
    assert bad.error.startswith("invalid registry entry: tenants[1] (agency-002).region")


def test_a_tenant_listed_twice_is_one_failing_row_per_table(fleet, prices):
    """Two entries of one tenant id gave two rows with the same key, and the warehouse's refresh
    of ops.tenant_health then failed for the whole fleet (found by an independent fleet test)."""
    doc = yaml.safe_load(fleet.registry_path.read_text())
    doc["tenants"].append(dict(doc["tenants"][1]))
    from tenantlake.registry import parse_registry

    registry = parse_registry(yaml.safe_dump(doc))
    rows, _ = collect(fleet.lake, fleet.state, registry, now=NOW, prices=prices, objectives=load_objectives())
    keys = [(r.tenant_id, r.entity) for r in rows]
    assert len(keys) == len(set(keys))
    [bad] = [r for r in rows if r.tenant_id == "agency-002"]
    assert bad.state == "failing" and "agency-002" in bad.error


# ---- cost, by hand ------------------------------------------------------------------------------

def _batches(rows: list[dict]) -> pa.Table:
    base = {"export_id": "x", "outcome": "published", "bytes_exported": None, "bytes_stored": 0}
    from tenantlake.lake.catalog import BATCH_LOG_SCHEMA

    schema = pa.schema([BATCH_LOG_SCHEMA.field(c) for c in BATCH_COLUMNS])
    return pa.Table.from_pylist([{**base, **r} for r in rows], schema=schema)


def test_the_cost_of_a_known_batch_is_the_hand_computed_figure(prices):
    """An incremental export billed 5 GiB that wrote 2 GiB of Parquet, 300 of its run's 1,200 rows:
    export 5 GB x $0.125 = $0.625; load $0.05 x 300/1200 = $0.0125; a month of storage
    2 GB x $0.023 = $0.046; in all $0.6835."""
    t = _batches([
        {"tenant_id": "a", "entity": "Debt", "kind": "INCREMENTAL_EXPORT", "run_id": "r", "rows": 300,
         "bytes_exported": 5 * GIB, "bytes_stored": 2 * GIB, "logged_at": NOW - timedelta(days=1)},
        {"tenant_id": "b", "entity": "Debt", "kind": "INCREMENTAL_EXPORT", "run_id": "r", "rows": 900,
         "bytes_exported": 0, "bytes_stored": 0, "logged_at": NOW - timedelta(days=1)},
    ])
    [a] = [r for r in batch_costs(t, prices).to_pylist() if r["tenant_id"] == "a"]
    assert a["export_usd"] == pytest.approx(0.625)
    assert a["load_usd"] == pytest.approx(0.0125)
    [month] = [m for m in tenant_cost_monthly(batch_costs(t, prices), prices, NOW).to_pylist() if m["tenant_id"] == "a"]
    assert month["storage_usd"] == pytest.approx(0.046)
    assert month["total_usd"] == pytest.approx(0.6835)


def test_cost_per_tenant_per_month_carries_storage_through_quiet_months(prices):
    """September: a FULL export of 10 GiB storing 4 GiB, alone in its run: $1.00 + $0.092 + $0.05.
    October: nothing new, storage only: $0.092. November: an increment of 1 GiB storing 0.5 GiB,
    100 of its run's 400 rows: $0.125 + 4.5 GB x $0.023 = $0.1035 + $0.0125."""
    t = _batches([
        {"tenant_id": "a", "entity": "Debt", "kind": "FULL_EXPORT", "run_id": "r1", "rows": 1000,
         "bytes_exported": 10 * GIB, "bytes_stored": 4 * GIB, "logged_at": datetime(2026, 9, 15, tzinfo=UTC)},
        {"tenant_id": "a", "entity": "Plan", "kind": "INCREMENTAL_EXPORT", "run_id": "r2", "rows": 100,
         "bytes_exported": GIB, "bytes_stored": GIB // 2, "logged_at": datetime(2026, 11, 2, tzinfo=UTC)},
        {"tenant_id": "b", "entity": "Plan", "kind": "STREAM_FIREHOSE", "run_id": "r2", "rows": 300,
         "bytes_exported": None, "bytes_stored": 0, "logged_at": datetime(2026, 11, 2, tzinfo=UTC)},
        {"tenant_id": "a", "entity": "Plan", "kind": "INCREMENTAL_EXPORT", "run_id": "r3", "rows": 0,
         "outcome": "failed", "bytes_exported": 9 * GIB, "logged_at": datetime(2026, 11, 3, tzinfo=UTC)},
    ])
    monthly = tenant_cost_monthly(batch_costs(t, prices), prices, NOW).to_pylist()
    a = [(m["month"], m["batches"], m["load_runs"], round(m["export_usd"], 6), round(m["storage_usd"], 6),
          round(m["load_usd"], 6), round(m["total_usd"], 6)) for m in monthly if m["tenant_id"] == "a"]
    assert a == [
        (date(2026, 9, 1), 1, 1, 1.0, 0.092, LOAD_RUN, 1.142),
        (date(2026, 10, 1), 0, 0, 0.0, 0.092, 0.0, 0.092),
        (date(2026, 11, 1), 1, 1, 0.125, 0.1035, 0.0125, 0.241),
    ]
    b = [m for m in monthly if m["tenant_id"] == "b"]
    assert [(m["export_usd"], m["load_usd"]) for m in b] == [(0.0, pytest.approx(0.0375))]  # streams: no export
    assert {m["prices_read"] for m in monthly} == {date(2026, 11, 29)}  # the oldest price's day


def test_cost_per_month_counts_the_last_30_days_and_all_that_is_stored(prices):
    """40 days ago: a FULL export of 10 GiB storing 4 GiB, alone in its run - only its storage
    counts now, $0.092. Yesterday: an increment of 2 GiB storing 1 GiB, alone in its run: $0.25
    + $0.023 + $0.05. In all $0.415."""
    from tenantlake.ops.costs import cost_per_month

    t = _batches([
        {"tenant_id": "a", "entity": "Debt", "kind": "FULL_EXPORT", "run_id": "r1", "rows": 10,
         "bytes_exported": 10 * GIB, "bytes_stored": 4 * GIB, "logged_at": NOW - timedelta(days=40)},
        {"tenant_id": "a", "entity": "Debt", "kind": "INCREMENTAL_EXPORT", "run_id": "r2", "rows": 10,
         "bytes_exported": 2 * GIB, "bytes_stored": GIB, "logged_at": NOW - timedelta(days=1)},
    ])
    assert cost_per_month(batch_costs(t, prices), prices, NOW) == {("a", "Debt"): pytest.approx(0.415)}


def test_status_cost_per_month_of_the_fleet_is_hand_computed(health):
    """agency-001 Debt over the last 30 days: exports 2 GB FULL at $0.10 = $0.20 and 0.25 GB +
    0.125 GB INCREMENTAL at $0.125 = $0.046875; loads: alone in run-a ($0.05), 118 of run-b's 158
    rows, alone in run-c ($0.05) = $0.1373418; a month of its 1.1875 GB stored = $0.0273125;
    in all $0.4115293."""
    by_key, _ = health
    assert by_key[("agency-001", "Debt")].cost_usd_month == pytest.approx(
        0.20 + 0.375 * 0.125 + LOAD_RUN * (1 + 118 / 158 + 1) + 1.1875 * 0.023, abs=1e-6)
    assert by_key[("agency-001", "Debt")].cost_usd_month == pytest.approx(0.4115293, abs=1e-6)


# ---- the tables, the twin --------------------------------------------------------------------------

def test_the_lake_twin_is_read_by_duckdb_as_the_embedded_default_would(fleet, prices):
    import duckdb

    tables = ops_tables(fleet.lake, fleet.state, fleet.registry, now=NOW, prices=prices)
    from tenantlake.ops.tables import write_twin

    where = write_twin(fleet.state, tables)
    con = duckdb.connect()
    late = con.execute("SELECT tenant_id, entity, late_by_seconds FROM read_parquet(?) WHERE state = 'late'",
                       [where["tenant_health"]]).fetchall()
    assert late == [(LATE_TENANT, LATE_ENTITY, 3 * 3600)]
    tenants = con.execute("SELECT DISTINCT tenant_id FROM read_parquet(?) ORDER BY 1",
                          [where["tenant_cost_monthly"]]).fetchall()
    assert tenants == [("agency-001",), ("agency-002",), ("agency-003",), ("agency-005",)]  # 004 never published
    assert read_twin(fleet.state, "tenant_health").equals(tables["tenant_health"])


def test_ops_rows_are_the_tables_as_the_warehouse_refills_them(fleet, prices):
    from tenantlake.ops.tables import ops_rows

    tables = ops_tables(fleet.lake, fleet.state, fleet.registry, now=NOW, prices=prices)
    rows = ops_rows(tables)
    assert set(rows) == {"ops.tenant_health", "ops.tenant_cost_monthly", "ops.drift_summary"}
    columns, values = rows["ops.tenant_health"]
    assert columns[:4] == ("tenant_id", "entity", "state", "objective_seconds") and len(values) == 7
    late = dict(zip(columns, values[2], strict=True))
    assert (late["tenant_id"], late["state"], late["late_by_seconds"]) == (LATE_TENANT, "late", 3 * 3600)


def test_refresh_ops_uses_the_runtime_from_the_environment(fleet, monkeypatch):
    use_fleet(monkeypatch, fleet)
    tables = refresh_ops()
    assert tables["tenant_health"].num_rows == 7
    assert read_twin(fleet.state, "tenant_cost_monthly").num_rows == tables["tenant_cost_monthly"].num_rows


# ---- status ------------------------------------------------------------------------------------

def _args(*argv):
    root = argparse.ArgumentParser()
    add_status_parser(root.add_subparsers(dest="command"))
    return root.parse_args(["status", *argv])


def _runtime(fleet):
    return SimpleNamespace(lake=fleet.lake, state=fleet.state, registry=fleet.registry)


def test_status_json_lists_every_table_worst_first_and_exits_1(fleet, capsys):
    assert status_command(_args("--json"), _runtime(fleet), NOW) == 1
    rows = orjson.loads(capsys.readouterr().out)
    assert all(tuple(r) == JSON_KEYS for r in rows)
    assert [(r["tenant_id"], r["entity"], r["state"]) for r in rows][:4] == [
        ("agency-003", "Debt", "failing"), ("agency-003", "Plan", "failing"), (LATE_TENANT, LATE_ENTITY, "late"),
        ("agency-004", "Debt", "never")]
    late = rows[2]
    assert (late["lag_seconds"], late["objective_seconds"]) == (29 * 3600, 26 * 3600)
    assert rows[3]["lag_seconds"] is None
    assert "ExportError: data/abc.json.gz: MD5 mismatch" in rows[0]["error"]  # what the text table prints
    assert [r["error"] for r in rows[2:]] == [None] * (len(rows) - 2)


def test_status_text_names_the_late_table_and_the_failing_reason(fleet, capsys):
    assert status_command(_args(), _runtime(fleet), NOW) == 1
    out, err = capsys.readouterr()
    [line] = [x for x in out.splitlines() if x.startswith(LATE_TENANT)]
    assert line.split()[:6] == [LATE_TENANT, LATE_ENTITY, "LATE", "29h", "0m", "26h"]
    assert "! ExportError: data/abc.json.gz: MD5 mismatch" in out
    assert err.strip() == "7 tables of 5 tenants: 2 failing, 1 late, 1 never, 3 ok"


def test_status_exits_0_when_nothing_is_late_or_failing(fleet, capsys):
    assert status_command(_args("--tenant", "agency-001", "--json"), _runtime(fleet), NOW) == 0
    assert {r["state"] for r in orjson.loads(capsys.readouterr().out)} == {"ok"}
    assert status_command(_args("--tenant", "agency-004"), _runtime(fleet), NOW) == 0  # never is not a failure


def test_status_refuses_an_unknown_tenant_with_exit_2(fleet, capsys):
    assert status_command(_args("--tenant", "agency-999"), _runtime(fleet), NOW) == 2
    assert "agency-999: not in the registry" in capsys.readouterr().err


def test_the_status_hook_exits_with_the_status_through_the_cli(fleet, monkeypatch, capsys):
    """cli.main returns SystemExit's code: the hook raises it rather than returning a result."""
    use_fleet(monkeypatch, fleet)
    args = _args("--json", "--entity", "Plan")
    with pytest.raises(SystemExit) as done:
        args.run(args)
    assert done.value.code == 1
    assert [r["tenant_id"] for r in orjson.loads(capsys.readouterr().out)] == ["agency-003", "agency-001"]


@pytest.mark.parametrize(("seconds", "text"), [(None, "-"), (59, "0m"), (3600 * 29, "29h 0m"),
                                               (3600 * 47 + 60, "47h 1m"), (86400 * 3 + 7200, "3d 2h"), (-120, "-2m")])
def test_durations_read_as_people_say_them(seconds, text):
    assert duration(seconds) == text


# ---- configuration -------------------------------------------------------------------------------

def test_the_shipped_prices_are_dated_and_sourced():
    p = load_prices()
    assert p.source.endswith("config/prices.yaml") and p.currency == "USD"
    assert set(p.prices) == {"dynamodb_export_full", "dynamodb_export_incremental", "s3_standard_storage",
                             "redshift_serverless_compute", "redshift_serverless_minimum_charge"}
    assert all(x.source.startswith("https://") and x.read <= date.today() for x in p.prices.values())


def test_a_price_quoted_in_another_unit_is_refused(tmp_path, prices):
    doc = yaml.safe_load(yaml.safe_dump(PRICES))
    doc["prices"]["s3_standard_storage"]["unit"] = "USD per TB-month"
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=r"prices.yaml: price 's3_standard_storage' is in 'USD per TB-month'"):
        tenant_cost_monthly(batch_costs(_batches([{"tenant_id": "a", "entity": "Debt", "kind": "FULL_EXPORT",
                                                   "run_id": "r", "rows": 1, "logged_at": NOW}]), load_prices(path)),
                            load_prices(path), NOW)


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda d: d["entities"].update(Loan="26h"), "entities: unknown entity Loan"),
    (lambda d: d.update(default="5m"), "default: '5m' is outside"),
    (lambda d: d["entities"].update(Debt="soon"), "entities: not a duration"),
])
def test_a_bad_freshness_file_names_itself_and_the_field(tmp_path, mutate, expected):
    doc = yaml.safe_load((ops_config.CONFIG / "freshness.yaml").read_text())
    mutate(doc)
    path = tmp_path / "freshness.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=f"^{path}: {expected}"):
        load_objectives(path)


def test_every_shipped_objective_is_longer_than_every_shipped_export_window(registry):
    """An objective no longer than a tenant's window is missed after every window."""
    from tenantlake.registry import parse_window

    objectives = load_objectives()
    for t in registry.tenants:
        for entity in t.tables:
            assert objectives.objective(t, entity) > parse_window(t.export_window), (t.tenant_id, entity)
