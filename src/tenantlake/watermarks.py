"""How far each (tenant, table) has been published: kept beside the lake, one small JSON each.

Advanced only after a batch is published, so a failed or quarantined-at-batch-level run never
moves it; the next run asks again from the same point.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import orjson

from tenantlake.storage import Store


@dataclass(frozen=True)
class Watermark:
    to_us: int  # data is published up to here (a full export's time, an incremental's end)
    export_id: str
    kind: str


def when(us: int | None) -> str:
    """A watermark for people: its UTC time, or 'never'."""
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d %H:%M UTC") if us else "never"


def stalest(store: Store, tenant_id: str, entities) -> int | None:
    """How fresh a tenant is: its oldest table watermark (None while any table has none)."""
    marks = [read(store, tenant_id, e) for e in entities]
    return None if any(m is None for m in marks) or not marks else min(m.to_us for m in marks)


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
