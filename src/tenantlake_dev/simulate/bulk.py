"""One large FULL export of Debt items, streamed file by file: data for benchmarks at 1M+ items
without holding them in memory. The items come from the simulator's own Debt generator."""

from __future__ import annotations

import random
from datetime import datetime

import orjson

from tenantlake.registry import Tenant
from tenantlake.storage import Store
from tenantlake_dev.simulate import tenant_seed
from tenantlake_dev.simulate.exports import ExportRecord, write_full_export_files
from tenantlake_dev.simulate.history import Consumer, TenantHistory


def bulk_debt_export(store: Store, tenant: Tenant, items: int, files: int, at: datetime,
                     seed: int = 7) -> ExportRecord:
    at_us = int(at.timestamp() * 1e6)
    history = TenantHistory(tenant.tenant_id, tenant_seed(seed, tenant.tenant_id), 0, at, 1, 0)
    history.counselors = ["cns-bulk"]
    per_file = -(-items // files)

    def one_file(n: int) -> list[bytes]:
        debts = history.state["Debt"]
        while len(debts) < n:
            history._pull_debts(Consumer(history._new_id("con"), "COUNSELED"), at_us - 86_400_000_000)
        lines = [orjson.dumps({"Item": d}) + b"\n" for d in list(debts.values())[:n]]
        debts.clear()
        return lines

    sizes = [min(per_file, items - i * per_file) for i in range(files)]
    return write_full_export_files(store, tenant, "Debt", (one_file(n) for n in sizes if n > 0),
                                   at_us, random.Random(seed))
