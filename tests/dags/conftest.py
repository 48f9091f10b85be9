"""One Airflow metadata database and one DagBag for the session (as bigquery-etl and
telemetry-airflow do): every DAG test reads the same parsed DAGs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated SQLite metadata database with the pool the DAGs use."""
    env = dict(os.environ)
    subprocess.run([AIRFLOW, "db", "migrate"], check=True, env=env, capture_output=True)
    subprocess.run([AIRFLOW, "pools", "set", "tenant_exports", "8", "tenant pulls"], check=True, env=env,
                   capture_output=True)
    return os.environ["AIRFLOW_HOME"]


@pytest.fixture(scope="session")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))
