"""docker-compose.yml names and mounts what the code expects (no Docker engine here to run it)."""

from pathlib import Path

import yaml

from tenantlake.tasks import POOL

REPO = Path(__file__).resolve().parents[1]
compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
AIRFLOW = ["airflow-init", "api-server", "scheduler", "dag-processor", "triggerer", "worker"]


def test_airflow_services_with_postgres_and_a_celery_profile():
    services = compose["services"]
    assert set(AIRFLOW) | {"postgres", "redis"} == set(services)
    assert [services[s]["command"] for s in ("api-server", "scheduler", "dag-processor", "triggerer")] == \
        ["api-server", "scheduler", "dag-processor", "triggerer"]
    assert services["redis"]["profiles"] == ["celery"] and services["worker"]["profiles"] == ["celery"]
    assert services["worker"]["command"] == "celery worker"


def test_every_airflow_service_mounts_the_code_and_shares_one_configuration():
    for name in AIRFLOW:
        s = compose["services"][name]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in s["volumes"]}
        for folder in ("dags", "plugins"):  # what Airflow itself reads
            assert mounts[f"/opt/airflow/{folder}"] == f"./{folder}", (name, folder)
        for folder in ("dags", "sql", "expectations"):  # what the package reads under TENANTLAKE_ROOT
            assert mounts[f"/opt/tenantlake/{folder}"] == f"./{folder}", (name, folder)
            assert (REPO / folder).is_dir()
        env = s["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
        assert env["TENANTLAKE_MODE"] == "${TENANTLAKE_MODE:-local}"  # works before any AWS is configured
        assert "PYTHONPATH" not in env  # the package is installed in the image, not found on a path
        for conn in ("AIRFLOW_CONN_AWS_DEFAULT", "AIRFLOW_CONN_REDSHIFT_DEFAULT"):
            assert conn in env  # connections come from the environment


def test_init_creates_the_pool_the_dag_uses_and_the_demo_fleet():
    script = "\n".join(compose["services"]["airflow-init"]["command"])
    assert f"airflow pools set {POOL} " in script
    assert "airflow db migrate" in script and "tenantlake.cli simulate" in script


def test_image_installs_the_same_pins():
    docker = (REPO / "Dockerfile").read_text()
    assert "apache/airflow:3.3.2-python3.11" in docker
    assert "-r /opt/tenantlake/requirements.txt -c /opt/tenantlake/constraints.txt" in docker
    assert "pip install --no-cache-dir --no-deps /opt/tenantlake" in docker and "ENV TENANTLAKE_ROOT=/opt/tenantlake" in docker
    assert "apache-airflow==3.3.2" in (REPO / "requirements.txt").read_text()
