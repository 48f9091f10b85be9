"""What a sync task does with its tenants' outcomes: a problem that cannot heal fails the task at
once (AirflowFailException: no retry), one that can heals on the task's retry; everyone else's
work is published either way and the shard's summary names each failure."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
import pytest
from airflow.sdk.exceptions import AirflowFailException
from botocore.exceptions import ClientError

from tenantlake import sync
from tenantlake.storage import LocalStore
from tenantlake.tasks import SyncShardOperator, plan_shards


def outcome(tenant: str, error: Exception | None):
    from tenantlake.errors import heals

    out = sync.TableOutcome(tenant, "Debt", watermark_us=1)
    if error is not None:
        out.error, out.heals = f"{type(error).__name__}: {error}", heals(error)
    return out


@pytest.fixture
def shard(tmp_path, monkeypatch, registry):
    state = LocalStore(tmp_path)
    runtime = SimpleNamespace(landing=None, lake=None, state=state, key_for=lambda t: b"k", erased=lambda t: {},
                              registry=registry)
    op = SyncShardOperator(task_id="sync", shard={"entity": "Debt", "tenants": ["agency-001", "agency-002"],
                                                  "label": "agency-001 .. agency-002 (2 tenants) / Debt"})
    work = [sync.Work(registry.tenant("agency-001"), ["a"]), sync.Work(registry.tenant("agency-002"), ["b"])]

    def run(errors):
        monkeypatch.setattr(sync, "sync_shard", lambda *a, **kw: [outcome(t, errors.get(t)) for t in
                                                                   ("agency-001", "agency-002")])
        return op._ingest({"run_id": "r1"}, runtime, work)
    return run, state


def test_a_failure_that_cannot_heal_fails_at_once_and_names_the_tenant(shard):
    run, state = shard
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "AssumeRole")
    with pytest.raises(AirflowFailException, match=r"1 tenant table\(s\) failed \(1 other\(s\) went through\): "
                                                   r"agency-002 Debt: ClientError"):
        run({"agency-002": denied})
    (summary,) = [orjson.loads(state.get(k)) for k in state.list("_state/runs/")]
    assert summary["tables"]["agency-001"]["error"] is None and "AccessDenied" in summary["tables"]["agency-002"]["error"]


def test_a_shard_where_every_table_failed_does_not_say_the_others_went_through(shard):
    run, _ = shard
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "AssumeRole")
    with pytest.raises(AirflowFailException, match=r"2 tenant table\(s\) failed \(0 other\(s\) went through\)"):
        run({"agency-001": denied, "agency-002": denied})


def test_a_failure_that_can_heal_is_left_to_the_retry(shard):
    run, _ = shard
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "DescribeExport")
    with pytest.raises(RuntimeError, match="some may heal on retry") as raised:
        run({"agency-001": throttled})
    assert not isinstance(raised.value, AirflowFailException)


def test_no_failure_is_a_green_task(shard):
    run, _ = shard
    assert run({}) == {"tables": 2, "rows": 0}


def test_an_invalid_registry_entry_plans_a_failing_shard_of_its_own(registry):
    from tenantlake.registry import parse_registry

    text = (registry.source and open(registry.source).read()).replace(
        "aws_account_id: \"212222222222\"", "aws_account_id: \"21222222222x\"", 1)
    broken = parse_registry(text, "tenants.yaml")
    shards = plan_shards(broken, {})
    bad = [s for s in shards if s.get("problems")]
    assert [s["tenants"] for s in bad] == [["agency-002"]] and "aws_account_id" in bad[0]["problems"]["agency-002"]
    assert {t for s in shards if not s.get("problems") for t in s["tenants"]} == {
        "agency-001", "agency-003", "agency-004", "agency-005"}


def test_many_invalid_entries_are_grouped_and_a_duplicate_is_one_failure(registry):
    """A bad bulk edit (1,030 broken entries) plans a bounded number of failing shards, so the
    mapped sync stays within Airflow's max_map_length and the valid tenants run (one shard per
    entry overflowed it and no tenant ran); a tenant listed twice is one failing entry."""
    import yaml

    from tenantlake.registry import parse_registry

    doc = yaml.safe_load(open(registry.source).read())
    good = doc["tenants"]
    broken = [{**good[0], "tenant_id": f"bulk-{i:04d}", "aws_account_id": f"7{i:011d}", "region": "us-east1"}
              for i in range(1030)]
    doc["tenants"] = good + [good[1]] + broken  # agency-002 twice
    shards = plan_shards(parse_registry(yaml.safe_dump(doc), "tenants.yaml"), {})
    failing = [s for s in shards if s.get("problems")]
    assert len(shards) <= 200 and len(failing) <= 16
    named = [n for s in failing for n in s["problems"]]
    assert len(named) == len(set(named)) == 1031 and "agency-002" in named
    assert {t for s in shards if not s.get("problems") for t in s["tenants"]} == {
        "agency-001", "agency-003", "agency-004", "agency-005"}


def test_a_missing_pseudonym_key_fails_the_tenant_before_an_export_is_requested(registry, monkeypatch):
    """An export costs money: the tenant's key (needed to publish anything) is read first, so a
    missing secret fails that tenant without a request; the shard's other tenants go on."""
    from tenantlake import aws

    op = SyncShardOperator(task_id="t", shard={"entity": "Debt", "tenants": ["agency-001", "agency-002"], "label": "s"})
    monkeypatch.setattr(op, "_requests", lambda runtime, tenant, *a: ["a window"])
    asked = []
    monkeypatch.setattr(aws, "tenant_access", lambda tenant, central: asked.append(tenant.tenant_id) or
                        SimpleNamespace(client=lambda name: None))
    monkeypatch.setattr("tenantlake.exports.request_once", lambda *a: "arn")
    monkeypatch.setattr(op, "defer", lambda **kw: None)
    monkeypatch.setattr(op, "_ingest", lambda context, runtime, work, problems: problems)

    def key_for(tenant_id):
        if tenant_id == "agency-001":
            raise ValueError("secret tenantlake/agency-001/pseudonym-key not found")
        return b"k" * 32

    runtime = SimpleNamespace(key_for=key_for, central=None, state=None, settings=SimpleNamespace(aws_conn_id=None),
                              registry=SimpleNamespace(landing_bucket="b", landing_account_id="200000000000"))
    problems = op._request({"data_interval_end": None}, runtime, [registry.tenant("agency-001"),
                                                                    registry.tenant("agency-002")], set())
    assert asked == ["agency-002"] and list(problems) == ["agency-001"] and "pseudonym-key" in problems["agency-001"]


def test_a_tenant_whose_landing_cannot_be_planned_fails_alone(tmp_path, monkeypatch, registry):
    """Planning runs per tenant: one tenant's unreadable landing is that table's failure, named,
    and the shard's other tenants are ingested (it used to fail the whole shard, retried)."""
    from tenantlake import tasks

    state = LocalStore(tmp_path)
    runtime = SimpleNamespace(landing=None, lake=None, state=state, key_for=lambda t: b"k", erased=lambda t: {},
                              registry=registry, settings=SimpleNamespace(mode="local"))
    monkeypatch.setattr(tasks, "_runtime", lambda: runtime)

    def plan(landing, lake, state_, tenant, entity, resnapshot=False):
        if tenant.tenant_id == "agency-002":
            raise ValueError("manifest-summary.json: not valid JSON")
        return sync.Work(tenant, ["a"])
    ingested = []
    monkeypatch.setattr(sync, "plan_local", plan)
    monkeypatch.setattr(sync, "sync_shard", lambda landing, lake, st, entity, work, *a, **kw: ingested.extend(
        w.tenant.tenant_id for w in work) or [outcome(w.tenant.tenant_id, None) for w in work])
    op = SyncShardOperator(task_id="sync", shard={"entity": "Debt", "tenants": ["agency-001", "agency-002"],
                                                  "label": "s"})
    with pytest.raises(AirflowFailException, match=r"1 tenant table\(s\) failed \(1 other\(s\) went through\): "
                                                   r"agency-002 Debt: ValueError: manifest-summary.json"):
        op.execute({"run_id": "r1", "params": {}})
    assert ingested == ["agency-001"]
