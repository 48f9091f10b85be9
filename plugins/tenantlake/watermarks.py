"""How far each (tenant, table) has been published: kept beside the lake, one small JSON each.

Advanced only after a batch is published, so a failed or quarantined-at-batch-level run never
moves it; the next run asks again from the same point.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import orjson

from tenantlake.storage import Store


@dataclass(frozen=True)
class Watermark:
    to_us: int  # data is published up to here (a full export's time, an incremental's end)
    export_id: str
    kind: str


def _key(tenant_id: str, entity: str) -> str:
    return f"_state/watermarks/tenant_id={tenant_id}/{entity}.json"


def read(store: Store, tenant_id: str, entity: str) -> Watermark | None:
    key = _key(tenant_id, entity)
    return Watermark(**orjson.loads(store.get(key))) if store.exists(key) else None


def advance(store: Store, tenant_id: str, entity: str, mark: Watermark) -> None:
    current = read(store, tenant_id, entity)
    if current is not None and mark.to_us < current.to_us and mark.kind != "FULL_EXPORT":
        return  # a replayed older window never moves the mark back
    store.put(_key(tenant_id, entity), orjson.dumps(asdict(mark)))
