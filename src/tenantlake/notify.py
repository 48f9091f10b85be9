"""Alerts through Airflow's notifier machinery, naming the tenant and the table.

`TenantAlertNotifier` is a BaseNotifier: a task's `on_failure_callback`, a DAG's, or a deadline
alert's callback (`AsyncCallback(TenantAlertNotifier)`). It turns what Airflow hands it into an
Alert (subject, lines, the tenants and tables concerned) and sends it to the channels named by
TENANTLAKE_ALERTS, a comma-separated list read when the alert fires (never at DAG parse time):

  log                  the `tenantlake.alerts` logger at ERROR (the default: the task log and
                       whatever ships it)
  sns:<topic arn>      the amazon provider's SnsNotifier, with the Airflow AWS connection
                       TENANTLAKE_ALERTS_AWS_CONN (default aws_default); the tenants and tables
                       go as message attributes, so SNS subscriptions can filter on them
  email:<a@x>[;<b@y>]  the smtp provider's SmtpNotifier ([smtp] / the smtp_default connection)
  slack:<conn id>      the slack provider's SlackWebhookNotifier (apache-airflow-providers-slack)

Where the tenant and table come from:
  - a tenant_exports shard's task: its `shard` (`{"tenants": [...], "entity": ..., "label": ...}`)
    and the exception, which names each failed tenant and table;
  - any other task: the tenant tables its exception names (`agency-002/Debt`, as `report` lists them);
  - the freshness check: the LateTables exception it raises carries them;
  - a deadline alert: the DAG run it names (no tenant: a DAG-level objective).

An alert holds identifiers and reasons, never data values: the reasons come from our own
exceptions, which name files and fields, not item contents.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from airflow.sdk import BaseNotifier
from airflow.sdk.exceptions import AirflowFailException

from tenantlake.entities import ENTITY_NAMES

log = logging.getLogger("tenantlake.alerts")

SUBJECT_LIMIT = 100  # SNS refuses longer subjects; e-mail clients cut them anyway
BODY_LIMIT = 20  # lines of tables listed before "... and N more"


@dataclass(frozen=True)
class Alert:
    subject: str
    lines: tuple[str, ...] = ()
    tables: tuple[tuple[str, str], ...] = ()  # (tenant_id, entity); entity "-" for a whole tenant
    kind: str = "task_failed"  # task_failed | late | deadline_missed

    @property
    def text(self) -> str:
        return "\n".join((self.subject, *self.lines))

    @property
    def tenant_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for t, _ in self.tables))


class LateTables(AirflowFailException):
    """Raised by the freshness check: each late or failing (tenant, table), and why. An
    AirflowFailException, so the task fails at once (lateness does not heal on a retry), and the
    notifier names every table from it."""

    def __init__(self, tables: Sequence[tuple[str, str, str]]):
        self.tables = tuple(tables)  # (tenant_id, entity, why)
        shown = [f"{t} / {e}: {why}" for t, e, why in self.tables[:BODY_LIMIT]]
        more = len(self.tables) - len(shown)
        super().__init__(f"{len(self.tables)} tenant table(s) late or failing: " + "; ".join(shown)
                         + (f"; ... and {more} more" if more > 0 else ""))


# How our exceptions name a tenant table: "agency-002/Debt" (report), "agency-002 Debt:" (a shard),
# or "agency-003/-" (report, for a tenant whose registry entry is invalid: no table of it ran).
TABLE_REF = re.compile(rf"(?<![\w-])([a-z0-9][a-z0-9-]{{1,62}})(?:[/ ]({'|'.join(ENTITY_NAMES)})|/(-))(?![\w-])")


def _task_tables(task, exception) -> tuple[tuple[str, str], ...]:
    shard = getattr(task, "shard", None)
    if not isinstance(shard, dict):  # another task (report): the tables its exception names
        return tuple(dict.fromkeys((t, e or whole) for t, e, whole in TABLE_REF.findall(str(exception or ""))))
    entity = shard.get("entity") or "-"
    tenants = list(shard.get("tenants") or [])
    text = str(exception or "")
    named = [t for t in tenants if t in text]  # a shard's exception names each tenant that failed
    return tuple((t, entity) for t in (named or tenants))


def alert_from_context(context) -> Alert:
    """The alert for a task failure, a late-tables check or a missed deadline."""
    exception = context.get("exception")
    if isinstance(exception, LateTables):
        lines = tuple(f"{t} / {e}: {why}" for t, e, why in exception.tables)
        shown = lines[:BODY_LIMIT] + ((f"... and {len(lines) - BODY_LIMIT} more",) if len(lines) > BODY_LIMIT else ())
        first = ", ".join(f"{t} / {e}" for t, e, _ in exception.tables[:3])
        return Alert(f"tenantlake: {len(lines)} late or failing: {first}", shown,
                     tuple((t, e) for t, e, _ in exception.tables), "late")
    if "deadline" in context and "dag_run" in context:
        run = context["dag_run"] if isinstance(context["dag_run"], dict) else {}
        dag_id, run_id = run.get("dag_id", "?"), run.get("dag_run_id") or run.get("run_id", "?")
        deadline = context["deadline"].get("deadline_time") if isinstance(context["deadline"], dict) else None
        return Alert(f"tenantlake: {dag_id} missed its deadline", (f"run {run_id} was still not done at {deadline}",),
                     (), "deadline_missed")
    task, ti = context.get("task"), context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", None) or getattr(task, "task_id", "?")
    label = getattr(ti, "rendered_map_index", None) or (getattr(task, "shard", None) or {}).get("label")
    tables = _task_tables(task, exception)
    where = f" — {label}" if label else (f" — {tables[0][0]} / {tables[0][1]}" if len(tables) == 1 else
                                         f" — {len(tables)} tenant tables" if tables else "")
    lines = [f"dag {dag_id}, task {task_id}, run {context.get('run_id', '?')}"]
    if tables:
        lines.append("tenant tables: " + ", ".join(f"{t} / {e}" for t, e in tables[:BODY_LIMIT]))
    if exception is not None:
        lines.append(f"{type(exception).__name__}: {exception}")
    return Alert(f"tenantlake: {dag_id}.{task_id} failed{where}", tuple(lines), tables)


# ---- channels ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Channel:
    kind: str
    target: str = ""

    def send(self, alert: Alert, context) -> None:
        if self.kind == "log":
            log.error("%s", alert.text, extra={"tenant_ids": alert.tenant_ids})
        elif self.kind == "sns":
            from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

            attributes = {"kind": alert.kind}
            if alert.tables:
                attributes["tenant_ids"] = ",".join(alert.tenant_ids)[:1024]
                attributes["tables"] = ",".join(f"{t}/{e}" for t, e in alert.tables)[:1024]
            # notify(), not __call__: the message is final text, not a template to render again
            SnsNotifier(aws_conn_id=os.environ.get("TENANTLAKE_ALERTS_AWS_CONN", "aws_default"),
                        target_arn=self.target, subject=alert.subject[:SUBJECT_LIMIT], message=alert.text,
                        message_attributes=attributes).notify(context)
        elif self.kind == "email":
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            body = "<pre>" + alert.text.replace("&", "&amp;").replace("<", "&lt;") + "</pre>"
            SmtpNotifier(to=self.target.split(";"), subject=alert.subject, html_content=body).notify(context)
        elif self.kind == "slack":
            from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

            SlackWebhookNotifier(slack_webhook_conn_id=self.target, text=alert.text).notify(context)


KINDS = {"log": False, "sns": True, "email": True, "slack": True}  # kind -> needs a target


def parse_channels(spec: str) -> list[Channel]:
    """'log,sns:arn:aws:sns:...' -> channels; ValueError naming the bad part."""
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        kind, _, target = part.partition(":")
        if kind not in KINDS:
            raise ValueError(f"TENANTLAKE_ALERTS: unknown channel {kind!r} in {part!r}; channels: {', '.join(KINDS)}")
        if KINDS[kind] and not target:
            raise ValueError(f"TENANTLAKE_ALERTS: {kind} needs a target ({kind}:<...>)")
        if kind == "slack":
            import importlib.util

            if importlib.util.find_spec("airflow.providers.slack") is None:
                raise ValueError("TENANTLAKE_ALERTS: slack needs apache-airflow-providers-slack installed")
        out.append(Channel(kind, target))
    return out or [Channel("log")]


class TenantAlertNotifier(BaseNotifier):
    """Sends an Alert naming the tenant and table to the configured channels (see the module doc).

    `channels` overrides TENANTLAKE_ALERTS for this notifier (e.g. "log,sns:arn:..."). A channel
    that fails is logged and the others still send; the notifier then raises, so Airflow logs
    the callback as failed.
    """

    def __init__(self, *, channels: str | None = None, context=None):
        super().__init__(context=context)
        self.channels = channels

    def channel_list(self) -> list[Channel]:
        spec = self.channels if self.channels is not None else os.environ.get("TENANTLAKE_ALERTS", "log")
        return parse_channels(spec)

    def send(self, alert: Alert, context) -> None:
        problems = []
        for channel in self.channel_list():
            try:
                channel.send(alert, context)
            except Exception as e:  # noqa: BLE001 - one broken channel must not silence the others
                log.exception("alert channel %s failed", channel.kind)
                problems.append(f"{channel.kind}: {type(e).__name__}: {e}")
        if problems:
            raise RuntimeError(f"alert channels failed: {'; '.join(problems)}")

    def notify(self, context) -> None:
        self.send(alert_from_context(context), context)

    async def async_notify(self, context) -> None:
        # deadline alerts run in the triggerer: the providers' clients block, so off the event loop
        await asyncio.to_thread(self.notify, context)
