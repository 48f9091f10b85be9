"""plugins/ holds real Airflow plugins only: Airflow's own listing over it, in a fresh
AIRFLOW_HOME, shows our one plugin from its file, and nothing of the tenantlake package is loaded
as a plugin or imported when plugins load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "TENANTLAKE_"))}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
               AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"))
    return env


def test_airflows_plugin_listing_shows_only_real_plugins(tmp_path):
    done = subprocess.run([AIRFLOW, "plugins", "-o", "json"], env=_env(tmp_path), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    plugins = json.loads(done.stdout)
    from_folder = {p["name"]: p["source"] for p in plugins if p["source"].startswith("$PLUGINS_FOLDER")}
    assert from_folder == {"tenant_health": "$PLUGINS_FOLDER/tenant_health.py"}
    # the others come from installed providers' entry points, never from our package
    assert all(p["source"].startswith("apache-airflow-providers-") for p in plugins if p["name"] not in from_folder)
    assert not any("tenantlake" in json.dumps(p) for p in plugins if p["name"] != "tenant_health")
    [ours] = [p for p in plugins if p["name"] == "tenant_health"]
    assert ours["fastapi_apps"] == [{"app": "fastapi.applications.FastAPI", "url_prefix": "/tenant-health",
                                     "name": "Tenant health"}]
    assert [v["name"] for v in ours["external_views"]] == ["Tenant health"]
    assert "Failed to import plugin" not in done.stderr


def test_the_folder_has_no_module_but_plugins_and_loading_them_imports_no_tenantlake(tmp_path):
    assert sorted(p.name for p in (REPO / "plugins").glob("*.py")) == ["tenant_health.py"]
    code = ("import sys; from airflow import plugins_manager; plugins, errors = plugins_manager._get_plugins(); "
            "assert not errors, errors; print(sorted(m for m in sys.modules if m.split('.')[0] == 'tenantlake'))")
    done = subprocess.run([sys.executable, "-c", code], env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"  # tenantlake is imported on a page's first request only
