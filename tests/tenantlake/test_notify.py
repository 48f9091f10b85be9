"""The notifier: what an alert says for each kind of failure, and the channels it goes to."""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace

import pytest

from tenantlake.notify import Alert, Channel, LateTables, TenantAlertNotifier, alert_from_context, parse_channels


class Capture(TenantAlertNotifier):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.sent = []

    def send(self, alert, context):
        self.sent.append(alert)


def _shard_context(tenants, entity, message, label=None):
    from airflow.sdk.exceptions import AirflowFailException

    task = SimpleNamespace(task_id="sync", shard={"tenants": tenants, "entity": entity, "label": label or
                                                  f"{tenants[0]} / {entity}"})
    ti = SimpleNamespace(dag_id="tenant_exports", task_id="sync", rendered_map_index=label or f"{tenants[0]} / {entity}")
    return {"task": task, "ti": ti, "run_id": "scheduled__2026-11-30T10:00:00+00:00",
            "exception": AirflowFailException(message)}


def test_a_shard_failure_names_the_failed_tenants_and_the_table():
    ctx = _shard_context(["agency-002", "agency-003", "agency-004"], "Debt",
                         "1 tenant table(s) failed (2 other(s) went through): agency-003 Debt: ExportError: "
                         "data/x.json.gz: MD5 mismatch", "agency-002 .. agency-004 (3 tenants) / Debt")
    alert = alert_from_context(ctx)
    assert alert.tables == (("agency-003", "Debt"),)  # named by the exception; its shard-mates published
    assert alert.subject == "tenantlake: tenant_exports.sync failed — agency-002 .. agency-004 (3 tenants) / Debt"
    assert "tenant tables: agency-003 / Debt" in alert.lines
    assert alert.lines[-1].startswith("AirflowFailException: 1 tenant table(s) failed")


def test_a_one_tenant_shard_carries_its_tenant_even_when_the_error_does_not_name_it():
    alert = alert_from_context(_shard_context(["agency-004"], "Plan", "the task ran out of memory"))
    assert alert.tables == (("agency-004", "Plan"),) and alert.tenant_ids == ("agency-004",)
    assert alert.subject.endswith("— agency-004 / Plan")


def test_late_tables_become_one_alert_listing_each_and_by_how_much():
    late = LateTables([("agency-002", "Debt", "late by 3h 0m (lag 29h 0m, objective 26h 0m)"),
                       ("agency-003", "Debt", "failing: ExportError: MD5 mismatch")])
    alert = alert_from_context({"exception": late})
    assert alert.kind == "late"
    assert alert.subject == "tenantlake: 2 late or failing: agency-002 / Debt, agency-003 / Debt"
    assert alert.lines == ("agency-002 / Debt: late by 3h 0m (lag 29h 0m, objective 26h 0m)",
                           "agency-003 / Debt: failing: ExportError: MD5 mismatch")
    assert str(late).startswith("2 tenant table(s) late or failing: agency-002 / Debt: late by 3h 0m")


def test_a_long_list_is_cut_in_the_alert_but_every_table_is_in_its_attributes():
    late = LateTables([(f"agency-{i:03d}", "Debt", "late by 1h 0m") for i in range(25)])
    alert = alert_from_context({"exception": late})
    assert len(alert.lines) == 21 and alert.lines[-1] == "... and 5 more"
    assert len(alert.tables) == 25


def test_a_missed_deadline_names_the_dag_run():
    """The context a deadline callback gets (airflow.models.deadline.Deadline.handle_miss)."""
    ctx = {"dag_run": {"dag_id": "tenant_health", "dag_run_id": "scheduled__2026-11-30T10:00:00+00:00"},
           "deadline": {"id": "d1", "deadline_time": "2026-11-30T10:30:00+00:00"}}
    alert = alert_from_context(ctx)
    assert (alert.kind, alert.subject) == ("deadline_missed", "tenantlake: tenant_health missed its deadline")
    assert alert.lines == ("run scheduled__2026-11-30T10:00:00+00:00 was still not done at 2026-11-30T10:30:00+00:00",)


def test_the_default_channel_logs_the_alert(caplog, monkeypatch):
    monkeypatch.delenv("TENANTLAKE_ALERTS", raising=False)
    with caplog.at_level(logging.ERROR, logger="tenantlake.alerts"):
        TenantAlertNotifier()({"exception": LateTables([("agency-002", "Debt", "late by 3h 0m")])})
    [record] = [r for r in caplog.records if r.name == "tenantlake.alerts"]
    assert record.getMessage() == "tenantlake: 1 late or failing: agency-002 / Debt\nagency-002 / Debt: late by 3h 0m"


def test_a_deadline_callback_runs_the_notifier_in_airflows_callback_trigger(caplog):
    """The triggerer imports the callback path and awaits TenantAlertNotifier(context=..., **kwargs)."""
    from airflow.sdk import AsyncCallback
    from airflow.triggers.callback import CallbackTrigger

    callback = AsyncCallback(TenantAlertNotifier, kwargs={"channels": "log"})
    ctx = {"dag_run": {"dag_id": "tenant_exports", "dag_run_id": "r1"}, "deadline": {"deadline_time": "t"}}
    trigger = CallbackTrigger(callback.path, {**callback.kwargs, "context": ctx})

    async def events():
        return [e.payload async for e in trigger.run()]

    with caplog.at_level(logging.ERROR, logger="tenantlake.alerts"):
        payloads = asyncio.run(events())
    assert [p["state"] for p in payloads] == ["running", "success"]
    assert any(r.getMessage().startswith("tenantlake: tenant_exports missed its deadline") for r in caplog.records)


def test_channels_are_parsed_and_checked():
    assert parse_channels("") == [Channel("log")]
    assert parse_channels("log, sns:arn:aws:sns:us-east-1:200000000000:alerts,email:a@x.test;b@x.test") == [
        Channel("log"), Channel("sns", "arn:aws:sns:us-east-1:200000000000:alerts"), Channel("email", "a@x.test;b@x.test")]
    with pytest.raises(ValueError, match="unknown channel 'pager'"):
        parse_channels("log,pager:x")
    with pytest.raises(ValueError, match="sns needs a target"):
        parse_channels("sns")
    with pytest.raises(ValueError, match="slack needs apache-airflow-providers-slack"):
        parse_channels("slack:slack_alerts")


def test_one_broken_channel_does_not_silence_the_others(monkeypatch):
    sent = []

    def send(self, alert, context):
        if self.kind == "sns":
            raise ConnectionError("no route to SNS")
        sent.append(self.kind)

    monkeypatch.setattr(Channel, "send", send)
    with pytest.raises(RuntimeError, match="alert channels failed: sns: ConnectionError: no route to SNS"):
        TenantAlertNotifier(channels="sns:arn:aws:sns:us-east-1:200000000000:alerts,log").notify(
            {"exception": LateTables([("agency-002", "Debt", "late")])})
    assert sent == ["log"]


def test_sns_gets_the_alert_with_tenant_and_table_attributes(monkeypatch):
    """Through the amazon provider's SnsNotifier, on moto: the subscription filters on attributes."""
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        sns, sqs = boto3.client("sns", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="tenantlake-alerts")["TopicArn"]
        queue = sqs.create_queue(QueueName="on-call")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        monkeypatch.setenv("TENANTLAKE_ALERTS", f"sns:{topic}")
        TenantAlertNotifier()({"exception": LateTables([("agency-002", "Debt", "late by 3h 0m")])})
        [message] = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(message["Body"])
    assert body["Subject"] == "tenantlake: 1 late or failing: agency-002 / Debt"
    assert body["Message"].splitlines()[1] == "agency-002 / Debt: late by 3h 0m"
    assert body["MessageAttributes"]["tenant_ids"]["Value"] == "agency-002"
    assert body["MessageAttributes"]["tables"]["Value"] == "agency-002/Debt"


def test_an_alert_reads_as_one_text():
    a = Alert("subject", ("one", "two"), (("t", "e"),))
    assert a.text == "subject\none\ntwo" and a.tenant_ids == ("t",)


def test_a_task_without_a_shard_names_the_tables_its_exception_lists():
    """tenant_exports' report fails listing tenant/entity pairs."""
    ti = SimpleNamespace(dag_id="tenant_exports", task_id="report", rendered_map_index=None)
    ctx = {"task": SimpleNamespace(task_id="report"), "ti": ti, "run_id": "r",
           "exception": RuntimeError("3 tenant table(s) failed (the others published): agency-002/Debt, "
                                     "agency-010/Plan, agency-011/-")}
    alert = alert_from_context(ctx)
    assert alert.tables == (("agency-002", "Debt"), ("agency-010", "Plan"), ("agency-011", "-"))
    assert alert.subject == "tenantlake: tenant_exports.report failed — 3 tenant tables"  # the body names them


@pytest.mark.parametrize("text", ["the export failed - retrying", "agency-002/Debtor", "agency-002 Debts", "x-agency/-y"])
def test_text_that_only_looks_like_a_tenant_table_is_not_one(text):
    ctx = {"task": SimpleNamespace(task_id="report"), "exception": RuntimeError(text)}
    assert alert_from_context(ctx).tables == ()
