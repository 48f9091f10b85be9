"""Erasure of one consumer and offboarding of one tenant, through the command line, on a lake and a
warehouse built by the real ingest and load: exactly what was asked is gone from every layer, on
disk too; everything else is identical; a kill mid-way and a rerun end in the same place."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tenantlake import cli, sync, watermarks
from tenantlake.contracts import ENTITIES
from tenantlake.lake.read import read
from tenantlake.pseudonyms import pseudonym
from tenantlake_dev.simulate import FleetSpec

pytestmark = pytest.mark.slow
A, B = "agency-001", "agency-002"


@pytest.fixture
def world(tmp_path, registry):
    """Two agencies through the real ingest and load (with a few known-bad items each)."""
    from tests.conftest import pipeline_world

    spec = FleetSpec(consumers=40, days=2, warmup_days=30, seed=5, defects=1)
    with pipeline_world(tmp_path, registry, [A, B], spec) as runtime:
        yield runtime, tmp_path / "home"


def warehouse_rows(runtime) -> dict[str, list[dict]]:
    """Every row of every table and view of the warehouse, by name."""
    from tenantlake.loading import _session

    with _session(runtime) as (_, wh):
        names = [f"{r['table_schema']}.{r['table_name']}" for r in wh.query(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('core', 'mart', 'ops', 'lake_protected', 'stage')")]
        return {n: wh.query(f"SELECT * FROM {n}") for n in names}


def per_tenant(rows: dict[str, list[dict]], tenant_id: str) -> dict[str, list[str]]:
    """A tenant's rows of every table, as sorted text: byte-for-byte comparable before and after."""
    return {n: sorted(json.dumps(r, default=str, sort_keys=True) for r in rs if r.get("tenant_id") == tenant_id)
            for n, rs in rows.items() if n not in ("ops.load_audit", "ops.tenant_health", "ops.tenant_cost_monthly",
                                                     "ops.load_cursor", "ops.refresh_pending")}


def lake_values(home: Path) -> set[str]:
    """Every string value in every Parquet file on disk under the lake, and every JSON line landed."""
    found: set[str] = set()
    for path in (home / "lake").rglob("*.parquet"):
        for column in pq.read_table(path).to_pylist():
            found |= {v for v in column.values() if isinstance(v, str)}
    return found


def a_consumer_with_debts(runtime) -> str:
    debts = read(runtime.lake, "raw", "Debt", A).to_pylist()
    counts: dict[str, int] = {}
    for d in debts:
        if d["consumer_id"]:
            counts[d["consumer_id"]] = counts.get(d["consumer_id"], 0) + 1
    return max(counts, key=counts.get)


def landed_lines(home: Path, tenant_id: str) -> list[bytes]:
    lines = []
    for path in (home / "landing" / f"tenant={tenant_id}").rglob("*.gz"):
        lines += gzip.decompress(path.read_bytes()).splitlines()
    return lines


def test_erasing_one_consumer_reaches_every_layer_and_stays_erased(world, monkeypatch):
    runtime, home = world
    consumer = a_consumer_with_debts(runtime)
    key = pseudonym(runtime.key_for(A), A, consumer)
    before = warehouse_rows(runtime)
    assert any(key in json.dumps(r, default=str) for rs in before.values() for r in rs)

    # killed half-way (after the landing files and the quarantine, before raw), then run again
    from tenantlake import lifecycle

    real = lifecycle.delete_rows

    def dies_on_raw(lake, zone, *a, **kw):
        if zone == "raw":
            raise KeyboardInterrupt("killed")
        return real(lake, zone, *a, **kw)

    monkeypatch.setattr(lifecycle, "delete_rows", dies_on_raw)
    with pytest.raises(KeyboardInterrupt):
        cli.main(["erase", "--tenant", A, "--consumer", consumer])
    monkeypatch.setattr(lifecycle, "delete_rows", real)
    assert cli.main(["erase", "--tenant", A, "--consumer", consumer]) == 0

    after = warehouse_rows(runtime)
    for name, rows in after.items():
        for r in rows:
            text = json.dumps(r, default=str)
            assert key not in text and consumer not in text, (name, r)
    assert per_tenant(after, B) == per_tenant(before, B)  # the other tenant, row for row
    for entity, contract in ENTITIES.items():
        ref = contract.consumer_reference
        raw = read(runtime.lake, "raw", entity, A)
        if ref is not None and raw is not None:
            assert consumer not in set(raw[ref.column].to_pylist()), entity
    assert consumer not in lake_values(home)  # on disk: expired snapshots and their files are gone
    assert not any(consumer.encode() in line for line in landed_lines(home, A))
    log = read(runtime.lake, "ops", "erasures").to_pylist()
    assert [(r["tenant_id"], r["consumer_key"]) for r in log] == [(A, key)] and log[0]["completed_at"]
    assert consumer not in json.dumps(log, default=str)  # the request is kept by pseudonym only

    # the landed exports still verify, and a later export still carrying the consumer brings nothing back
    from tenantlake_dev.simulate.exports import write_incremental_export
    from tenantlake_dev.simulate.history import Change

    tenant = runtime.registry.tenant(A)
    mark = watermarks.read(runtime.state, A, "Consumer")
    item = {"id": {"S": consumer}, "status": {"S": "ENROLLED"}, "firstName": {"S": "Back"},
            "_version": {"N": "99"}, "_lastChangedAt": {"N": str(mark.to_us // 1000 + 60_000)}}
    import random

    write_incremental_export(runtime.landing, tenant, "Consumer", [Change(mark.to_us + 60_000_000, 0, "Consumer",
                                                                          consumer, None, item)],
                             mark.to_us, mark.to_us + 3_600_000_000, random.Random(1))
    work = sync.plan_local(runtime.landing, runtime.lake, runtime.state, tenant, "Consumer")
    out = sync.sync_shard(runtime.landing, runtime.lake, runtime.state, "Consumer", [work], "later", runtime.key_for,
                          erased=runtime.erased({A}))
    assert out[0].error is None and out[0].summary()["erased"] == 1
    assert consumer not in set(read(runtime.lake, "raw", "Consumer", A)["id"].to_pylist())


def test_offboarding_removes_exactly_one_tenant(world, monkeypatch):
    runtime, home = world
    before = warehouse_rows(runtime)
    b_files = {p: p.read_bytes() for p in (home / "lake").rglob("*.parquet") if f"tenant_id={B}" in str(p)}

    from tenantlake import lifecycle

    b_landed = {p: p.read_bytes() for p in (home / "landing" / f"tenant={B}").rglob("*") if p.is_file()}
    # a typo, or an id that reaches into another tenant's folders (it deleted B's export): refused
    for wrong in ("agency-01", f"{B}/table=Debt", ""):
        assert cli.main(["offboard", "--tenant", wrong, "--yes"]) == 2
    assert {p: p.read_bytes() for p in (home / "landing" / f"tenant={B}").rglob("*") if p.is_file()} == b_landed
    real = lifecycle.forget_history
    monkeypatch.setattr(lifecycle, "forget_history", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        cli.main(["offboard", "--tenant", A, "--yes"])
    monkeypatch.setattr(lifecycle, "forget_history", real)
    assert cli.main(["offboard", "--tenant", A]) == 2  # not without --yes
    assert cli.main(["offboard", "--tenant", A, "--yes"]) == 0

    after = warehouse_rows(runtime)
    for name, rows in after.items():
        leftover = [r for r in rows if r.get("tenant_id") == A]
        if name == "ops.load_audit":  # reduced to a record that the tenant existed and was removed
            assert len(leftover) == 1 and leftover[0]["kind"] == "TENANT_REMOVED", leftover
        else:
            assert not leftover, name
    assert per_tenant(after, B) == per_tenant(before, B)
    assert {p: p.read_bytes() for p in (home / "lake").rglob("*.parquet") if f"tenant_id={B}" in str(p)} == b_files
    assert not (home / "landing" / f"tenant={A}").exists()
    assert not any(f"tenant_id={A}" in str(p) for p in (home / "lake").rglob("*.parquet"))
    assert not runtime.state.list(f"_state/watermarks/tenant_id={A}/")
    assert not (home / "secrets" / f"pseudonym-{A}.key").exists()
    report = json.loads(runtime.state.get(f"_state/offboarded/tenant_id={A}.json"))
    assert report["completed_at"] and report["removed"]["raw"] > 0 and report["removed"]["landing"] > 0
    from tenantlake.lifecycle import offboarded_tenants
    from tenantlake.tasks import plan_shards

    shards = plan_shards(runtime.registry, {}, offboarded_tenants(runtime.state))
    refused = [s for s in shards if A in s["tenants"]]
    assert len(refused) == 1 and "offboarded" in refused[0]["problems"][A]
    from tenantlake.ops.health import collect

    tenants = {r.tenant_id for r in collect(runtime.lake, runtime.state, runtime.registry)[0]}
    assert A not in tenants and B in tenants  # status lists the fleet, which it left


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def test_erase_refuses_what_it_must_not_do_names_what_it_could_not_and_warns_when_it_finds_nothing(world, capsys):
    runtime, home = world
    from tenantlake.ops.tables import read_twin, refresh_ops

    for empty in ("", "   "):  # refused before anything is recorded
        assert cli.main(["erase", "--tenant", A, "--consumer", empty]) == 2
        assert "--consumer: empty" in one_line(capsys.readouterr().err)
    assert read(runtime.lake, "ops", "erasures") is None

    # nothing of them here (an unknown id; the other agency's consumer): recorded, and said so
    b_consumer = read(runtime.lake, "raw", "Consumer", B)["id"].to_pylist()[0]
    assert b_consumer not in set(read(runtime.lake, "raw", "Consumer", A)["id"].to_pylist())
    for nobody in ("nobody-999", b_consumer):
        assert cli.main(["erase", "--tenant", A, "--consumer", nobody]) == 0
        out = capsys.readouterr()
        assert "warning: nothing of consumer" in one_line(out.err) and nobody not in out.err
    assert len(read(runtime.lake, "ops", "erasures", A)) == 2

    # a landed file of theirs cut short: named, every other layer erased, the request left incomplete
    consumer = a_consumer_with_debts(runtime)
    theirs = next(p for p in sorted((home / "landing" / f"tenant={A}" / "table=Debt").rglob("*.json.gz"))
                  if consumer.encode() in gzip.decompress(p.read_bytes()))
    theirs.write_bytes(theirs.read_bytes()[:-12])
    key = str(theirs.relative_to(home / "landing"))
    for _ in range(2):  # a rerun fails the same way, and still names it
        assert cli.main(["erase", "--tenant", A, "--consumer", consumer]) == 1
        out = capsys.readouterr()
        message = one_line(out.err)
        assert message.startswith("tenantlake erase: incomplete: 1 landed file(s)") and key in message
        assert json.loads(out.out)["unreadable"][0].startswith(f"{key}: not a readable gzip file")
    assert consumer not in set(read(runtime.lake, "raw", "Debt", A)["consumer_id"].to_pylist())
    assert consumer not in set(read(runtime.lake, "raw", "Consumer", A)["id"].to_pylist())
    mine = pseudonym(runtime.key_for(A), A, consumer)
    (request,) = [r for r in read(runtime.lake, "ops", "erasures", A).to_pylist() if r["consumer_key"] == mine]
    assert request["completed_at"] is None and json.loads(request["removed"])["raw"] > 0

    # offboarded: the ops twin loses the tenant at once; an erasure is refused and leaves no trace
    refresh_ops(runtime)
    twin_b = {n: [r for r in read_twin(runtime.state, n).to_pylist() if r["tenant_id"] == B]
              for n in ("tenant_health", "tenant_cost_monthly", "drift_summary")}
    assert any(r["tenant_id"] == A for r in read_twin(runtime.state, "tenant_health").to_pylist())
    assert cli.main(["offboard", "--tenant", A, "--yes"]) == 0
    capsys.readouterr()
    for name, rows in twin_b.items():
        assert [r for r in read_twin(runtime.state, name).to_pylist() if r["tenant_id"] == A] == [], name
        assert [r for r in read_twin(runtime.state, name).to_pylist() if r["tenant_id"] == B] == rows, name
    assert not (home / "secrets" / f"pseudonym-{A}.key").exists()
    assert cli.main(["erase", "--tenant", A, "--consumer", "nobody-999"]) == 2
    assert "offboarded" in one_line(capsys.readouterr().err)
    assert not (home / "secrets" / f"pseudonym-{A}.key").exists()  # no new key made
    assert read(runtime.lake, "ops", "erasures", A) is None
