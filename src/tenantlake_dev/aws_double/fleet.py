"""A simulated fleet played into the double's tables, each write at its own time.

The simulator (tenantlake_dev.simulate) writes export files directly; here the same agency
histories are written into DynamoDB tables instead, so the pipeline must ask for its exports (FULL
at the full-export time, INCREMENTAL windows after) and the double cuts them from what was
written, when it was written. The ground truth is the histories' final state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tenantlake_dev.aws_double.control import DoubleControl
from tenantlake_dev.aws_double.seed import Seeded, seed, tenant_client, write_items

KEY = "id"


def write_changes(tenants_by_id: dict, changes: Iterable, control: DoubleControl,
                  endpoint_url: str | None = None) -> int:
    """Apply changes (anything with .ts in epoch microseconds, .tenant_id, .entity, .key and .new,
    the item after the change or None for a delete) in time order, each at its own time."""
    clients: dict[str, object] = {}
    n = 0
    for c in sorted(changes, key=lambda c: c.ts):
        tenant = tenants_by_id[c.tenant_id]
        ddb = clients.get(c.tenant_id) or clients.setdefault(c.tenant_id, tenant_client(tenant, "dynamodb",
                                                                                         endpoint_url))
        control.set_clock(datetime.fromtimestamp(c.ts / 1e6, UTC))
        table = tenant.tables[c.entity]
        if c.new is None:
            ddb.delete_item(TableName=table, Key={KEY: {"S": c.key}})
        else:
            ddb.put_item(TableName=table, Item=c.new)
        n += 1
    return n


@dataclass(frozen=True)
class _Change:
    ts: int
    tenant_id: str
    entity: str
    key: str
    new: dict | None


@dataclass
class PlayedFleet:
    seeded: Seeded
    histories: dict  # tenant id -> TenantHistory (its .state is the tables' final state: the truth)
    full_export_at: datetime
    changes: int


def play_fleet(registry, spec, control: DoubleControl, endpoint_url: str | None = None,
               tenants=None, central_key: tuple[str, str] | None = None) -> PlayedFleet:
    """Seed the accounts just before `spec.full_export_at` with each table as it was then, then
    write every later change at its time. The clock ends at the last change; call
    control.real_clock() afterwards to let real time run on (full_export_at must be in the past)."""
    from tenantlake_dev.simulate import tenant_seed
    from tenantlake_dev.simulate.history import TenantHistory

    tenants = list(tenants if tenants is not None else registry.enabled)
    start = spec.full_export_at - timedelta(days=spec.warmup_days)
    histories, at_start, changes = {}, {}, []
    for t in tenants:
        h = TenantHistory(t.tenant_id, tenant_seed(spec.seed, t.tenant_id), spec.consumers, start,
                          spec.warmup_days, spec.days).run()
        histories[t.tenant_id] = h
        tables = {}
        for entity in t.tables:
            state = dict(h.state[entity])
            for c in reversed([c for c in h.changes if c.entity == entity]):  # undo what came later
                if c.old is None:
                    state.pop(c.key, None)
                else:
                    state[c.key] = c.old
            tables[entity] = list(state.values())
        at_start[t.tenant_id] = tables
        changes += [_Change(c.ts, t.tenant_id, c.entity, c.key, c.new) for c in h.changes if c.entity in t.tables]
    control.set_clock(spec.full_export_at - timedelta(minutes=1))
    seeded = seed(registry, endpoint_url=endpoint_url, tenants=tenants, central_key=central_key)
    for t in tenants:
        ddb = tenant_client(t, "dynamodb", endpoint_url)
        for entity, items in at_start[t.tenant_id].items():
            write_items(ddb, t.tables[entity], items)
    n = write_changes({t.tenant_id: t for t in tenants}, changes, control, endpoint_url)
    return PlayedFleet(seeded, histories, spec.full_export_at, n)
