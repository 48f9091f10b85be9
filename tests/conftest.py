"""Shared fixtures: the shipped registry, and one small simulated fleet per test session."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

# Tests never reach a real AWS endpoint: fake credentials and a default region for boto3/moto.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)

# Airflow reads its configuration on first import: give the test session its own home (SQLite
# metadata database, created by the dags fixtures) before anything imports airflow.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="tenantlake-airflow-")
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)  # every run used to leave one behind
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"

from tenantlake.registry import load_registry  # noqa: E402
from tenantlake_dev.simulate import FleetSpec, simulate_fleet  # noqa: E402

SMALL_FLEET = FleetSpec(consumers=150, days=2, warmup_days=40, window_hours=12, seed=11, streams=True)


@pytest.fixture(scope="session")
def registry():
    return load_registry()


@pytest.fixture(scope="session")
def fleet(tmp_path_factory, registry):
    """Three agencies, two days of 12-hour incremental windows, with stream records."""
    out = tmp_path_factory.mktemp("fleet")
    summary = simulate_fleet(registry.tenants[:3], SMALL_FLEET, out, workers=1)
    return out, summary


PIPELINE_FLEET = FleetSpec(consumers=60, days=2, warmup_days=30, seed=5)


@contextmanager
def pipeline_world(root, registry, tenants: list[str], spec: FleetSpec = PIPELINE_FLEET):
    """A simulated fleet of `tenants`, ingested and loaded by the code the DAGs call, under
    root/home (landing, lake, warehouse.duckdb): yields the runtime. The environment is restored
    afterwards."""
    import yaml

    from tenantlake import loading, sync
    from tenantlake.registry import DEFAULT_PATH
    from tenantlake.runtime import Runtime, forget

    doc = yaml.safe_load(DEFAULT_PATH.read_text())
    doc["tenants"] = [t for t in doc["tenants"] if t["tenant_id"] in tenants]
    (root / "tenants.yaml").write_text(yaml.safe_dump(doc))
    home = root / "home"
    simulate_fleet([registry.tenant(t) for t in tenants], spec, home, workers=1)
    saved = {k: os.environ.get(k) for k in ("TENANTLAKE_REGISTRY", "TENANTLAKE_HOME", "TENANTLAKE_MODE")}
    os.environ.update(TENANTLAKE_REGISTRY=str(root / "tenants.yaml"), TENANTLAKE_HOME=str(home),
                      TENANTLAKE_MODE="local")
    forget()
    try:
        runtime = Runtime.from_env()
        for tenant in runtime.registry.tenants:
            for entity in tenant.tables:
                work = sync.plan_local(runtime.landing, runtime.lake, runtime.state, tenant, entity)
                out = sync.sync_shard(runtime.landing, runtime.lake, runtime.state, entity, [work], "t",
                                      runtime.key_for)
                assert out[0].error is None, out[0].error
        loading.register_lake(runtime)
        loaded = loading.load(runtime)
        assert not loaded["failed"], loaded["failed"]
        loading.refresh(runtime)
        yield runtime
    finally:
        forget()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
