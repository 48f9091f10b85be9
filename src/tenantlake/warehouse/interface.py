"""What warehouse_load, the lifecycle commands and the tests need of a warehouse, whichever it is."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from tenantlake.lake.batches import LakeFile, LoadBatch


class LoadError(RuntimeError):
    """A load step could not be applied; the warehouse is as it was before the step."""


@dataclass(frozen=True)
class BatchOutcome:
    tenant_id: str
    entity: str
    export_id: str
    status: str  # loaded | skipped (already in the load audit) | failed (checks; left out)
    rows: int = 0
    reason: str = ""


@dataclass
class LoadReport:
    outcomes: list[BatchOutcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # whole entities that failed, rows of no batch
    seconds: dict[str, float] = field(default_factory=dict)  # per entity

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def loaded(self) -> int:
        return self.count("loaded")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    @property
    def failed(self) -> list[BatchOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def tenants(self) -> set[str]:
        """Tenants whose data this load changed."""
        return {o.tenant_id for o in self.outcomes if o.status == "loaded"}

    def merge(self, other: LoadReport) -> LoadReport:
        self.outcomes += other.outcomes
        self.problems += other.problems
        self.seconds.update(other.seconds)
        return self

    def summary(self) -> dict:
        """Small enough for XCom: counts, and each failure with its reason."""
        return {"loaded": self.loaded, "skipped": self.skipped,
                "failed": [f"{o.tenant_id} {o.entity} {o.export_id}: {o.reason}" for o in self.failed],
                "problems": self.problems, "rows": sum(o.rows for o in self.outcomes if o.status == "loaded")}


@dataclass(frozen=True)
class TableRefresh:
    table: str
    mode: str  # full | keys | skipped
    keys: int = 0
    seconds: float = 0.0


@dataclass
class RefreshReport:
    tables: list[TableRefresh] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict:
        return {"seconds": round(self.seconds, 3),
                "tables": {t.table: (t.mode, t.keys) for t in self.tables if t.mode != "skipped"}}


@runtime_checkable
class Warehouse(Protocol):
    """One warehouse, two backends (tenantlake.warehouse.duckdb, .redshift), one algorithm
    (tenantlake.warehouse.engine): the same SQL from sql/, rendered for each."""

    dialect: str

    def ensure(self) -> list[str]:
        """Create what is missing (schemas, tables, views, comments; policies and grants on
        Redshift's setup), add columns the contracts gained (filled from `_extra`). Idempotent;
        returns what it changed."""

    def register_lake(self, raw: Mapping[str, Sequence[LakeFile]], protected: Mapping[str, Sequence[LakeFile]]) -> None:
        """The lake's current files per entity, for lake.* (raw) and lake_protected.* (protected)."""

    def load(self, batches: Iterable[LoadBatch], *, replace_tenants: Collection[str] = (),
             cursors: Mapping[str, int] | None = None) -> LoadReport:
        """Every new batch, set-based: per entity one stage of all their files, per-batch checks, one
        latest-wins MERGE, history and the load audit, in one transaction. Batches already audited
        are skipped; a batch failing its checks is left out and reported. `replace_tenants`: those
        tenants' rows are replaced by what the batches hold (a reload). `cursors`: per entity, the
        lake snapshot read up to, recorded in the same transaction (ops.load_cursor)."""

    def refresh(self, registry=None, *, full: bool = False, schemas: Sequence[str] | None = None,
                reference: Mapping[str, tuple[Sequence[str], list[tuple]]] | None = None) -> RefreshReport:
        """Dimensions, facts and marts for what changed since the last refresh (`full`: all of it),
        in one transaction. `schemas` splits it into visible steps: ("ops", "core") then ("mart",);
        the pending changes are consumed by the step that refreshes the marts. `reference`: ops
        tables refilled whole first, {"ops.<name>": (columns, rows)}."""

    def check(self, tenants: Collection[str] | None = None) -> list[str]:
        """Post-load checks (current and history against the lake's protected tables, marts
        against core) for the given tenants (all when None); the problems found."""

    def query(self, sql: str, params: Sequence | None = None) -> list[dict]: ...

    def reload_tenant(self, tenant_id: str, batches: Iterable[LoadBatch], registry=None) -> LoadReport:
        """One tenant's rows replaced by the lake's (its every batch), others untouched; refreshed."""

    def erase_consumer(self, tenant_id: str, consumer_key: str,
                       item_ids: Mapping[str, Collection[str]] | None = None) -> dict[str, int]:
        """One consumer (by pseudonym) and their items removed from every layer, then refreshed."""

    def remove_tenant(self, tenant_id: str) -> dict[str, int]:
        """Every row of the tenant removed from every layer; the load audit keeps one record that
        it existed and was removed."""

    def close(self) -> None: ...
