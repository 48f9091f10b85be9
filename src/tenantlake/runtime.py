"""Everything a task, a command or a benchmark needs at run time, made once per process.

The registry, the settings, the stores (landing, and the lake's `_state` for watermarks and run
summaries), the Iceberg lake, the central account's AWS access, each tenant's pseudonym key and the
erasure list. Built from the environment when a task runs (never at DAG parse time); the
Airflow-facing piece (the AWS connection) is handed in by the caller, so this module is a plain
library and the CLI and benchmarks use the same path as the DAGs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from tenantlake.lake import Lake, open_lake
from tenantlake.registry import Registry, load_registry
from tenantlake.settings import Settings
from tenantlake.storage import Store, open_store

_cache: dict[tuple, Runtime] = {}
_lock = threading.Lock()


@dataclass
class Runtime:
    settings: Settings
    central: object | None = None  # tenantlake.aws.AwsAccess of the central account (aws mode)
    _keys: dict[str, bytes] = field(default_factory=dict)

    @property
    def registry(self) -> Registry:
        """Read when asked (load_registry caches it until the file changes)."""
        return load_registry()

    @classmethod
    def from_env(cls, central: Callable[[str], object] | None = None) -> Runtime:
        """The process's runtime for the current environment (cached: tasks of one process, a
        benchmark's many batches, share the lake catalog, the registry and the keys).
        `central(conn_id)` gives the central account's AwsAccess (tenantlake.connections)."""
        settings = Settings.from_env(load_registry().landing_bucket)
        key = (settings, os.environ.get("TENANTLAKE_REGISTRY"), central is not None)  # with access, or not
        with _lock:
            found = _cache.get(key)
            if found is None:
                access = central(settings.aws_conn_id) if central is not None and _needs_aws(settings) else None
                found = _cache[key] = cls(settings, access)
            return found

    @cached_property
    def lake(self) -> Lake:
        return open_lake(self.settings, self.central)

    @cached_property
    def state(self) -> Store:
        """Watermarks, export request ledger and run summaries, beside the lake."""
        return open_store(self.settings.lake, **self._store_access())

    @cached_property
    def landing(self) -> Store:
        return open_store(self.settings.landing, **self._store_access())

    def _store_access(self) -> dict:
        return {"access": self.central} if self.central is not None else {}

    def key_for(self, tenant_id: str) -> bytes:
        """The tenant's pseudonym key: from its secret reference in aws mode, a local key file
        standing in for the secret store otherwise."""
        if tenant_id not in self._keys:
            from tenantlake import pseudonyms

            if self.settings.mode == "aws":
                self._keys[tenant_id] = pseudonyms.secret_key(self.registry.tenant(tenant_id).pseudonym_key_ref,
                                                              self.central)
            else:
                self._keys[tenant_id] = pseudonyms.local_key(self.settings.home, tenant_id)
        return self._keys[tenant_id]

    def erased(self, tenant_ids: set[str]) -> dict[str, set[str]]:
        """The pseudonyms of consumers erased so far, per tenant: ingest drops their rows."""
        from tenantlake.lifecycle import erased_keys

        return erased_keys(self.lake, tenant_ids)


def _needs_aws(settings: Settings) -> bool:
    return settings.mode == "aws" or settings.lake.startswith("s3://") or settings.landing.startswith("s3://") \
        or settings.catalog == "glue"


def forget() -> None:
    """Drop cached runtimes (tests that change the environment between runs)."""
    with _lock:
        _cache.clear()
