"""docker-compose.yml, checked for what would break at run time (no Docker engine here to run it;
tests/services/test_airflow_services.py runs the same services as processes)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet

from tenantlake import connections, creditors, registry, settings
from tenantlake.ops import config as ops_config
from tenantlake.tasks import POOL
from tenantlake.warehouse import catalogue
from tests.services import compose as c

REPO = c.REPO
COMPOSE = c.load()
SERVICES = COMPOSE["services"]
ANCHOR = COMPOSE["x-airflow-env"]
SECRETS = {  # Airflow setting -> the .env variable scripts/init-env generates for it
    "AIRFLOW__API_AUTH__JWT_SECRET": "AIRFLOW_JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY": "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW__CORE__FERNET_KEY": "AIRFLOW_FERNET_KEY",
}
# What a service may add to the shared environment (never change): the init's sizes, the login.
EXTRA = {
    "airflow-init": {"TENANTLAKE_POOL_SLOTS"} | {f"TENANTLAKE_DEMO_{k}" for k in
                                                 ("AGENCIES", "CONSUMERS", "DAYS", "WARMUP_DAYS", "DEFECTS", "SEED")},
    "api-server": {"AIRFLOW_ADMIN_USER", "AIRFLOW_ADMIN_PASSWORD"},
    "worker": {"DUMB_INIT_SETSID"},
}
LONG_RUNNING = [s for s in c.AIRFLOW_SERVICES if s != "airflow-init"]


@pytest.fixture
def dotenv(tmp_path):
    """A .env as a newcomer gets it: scripts/init-env run once."""
    path = tmp_path / ".env"
    subprocess.run(["sh", str(c.INIT_ENV), str(path)], check=True, capture_output=True)
    return path


def env_of(name: str, dotenv_values: dict) -> dict:
    return c.service_env(SERVICES[name], dotenv_values)


def test_the_services_and_their_profiles():
    assert set(SERVICES) == set(c.AIRFLOW_SERVICES) | {"postgres", "redis", "aws-double"}
    assert {n: s.get("profiles") for n, s in SERVICES.items() if s.get("profiles")} == {
        "redis": ["celery"], "worker": ["celery"], "aws-double": ["aws-double"]}
    argv = {n: c.entrypoint_argv(SERVICES[n]) for n in c.AIRFLOW_SERVICES}
    assert argv["scheduler"] == ["airflow", "scheduler"] and argv["dag-processor"] == ["airflow", "dag-processor"]
    assert argv["triggerer"] == ["airflow", "triggerer"] and argv["worker"] == ["airflow", "celery", "worker"]
    for name in ("airflow-init", "api-server"):  # scripts the image runs, from the mounted scripts/
        assert argv[name][0] == "bash" and argv[name][1].startswith("/opt/tenantlake/scripts/")
    assert "exec airflow api-server" in (REPO / "scripts/airflow-api-server").read_text()


def test_every_airflow_component_gets_the_one_environment_unchanged():
    for name in c.AIRFLOW_SERVICES:
        env = SERVICES[name]["environment"]
        assert {k: env.get(k) for k in ANCHOR} == ANCHOR, name
        assert set(env) - set(ANCHOR) == EXTRA.get(name, set()), name
        assert SERVICES[name]["image"] == SERVICES["scheduler"]["image"] and SERVICES[name]["build"] == "."
    for setting, variable in SECRETS.items():
        # required, with no default: a default would be one secret shared by every clone
        assert ANCHOR[setting] == f"${{{variable}:?run ./scripts/init-env first (writes .env)}}"
    assert "PYTHONPATH" not in ANCHOR  # the package is installed in the image, not found on a path
    assert ANCHOR["TENANTLAKE_MODE"] == "${TENANTLAKE_MODE:-local}"  # works before any AWS is configured
    for conn in ("AIRFLOW_CONN_AWS_DEFAULT", "AIRFLOW_CONN_REDSHIFT_DEFAULT"):
        assert conn in ANCHOR  # connections come from the environment


def test_after_init_env_every_component_holds_the_same_secrets(dotenv):
    values = c.read_dotenv(dotenv)
    envs = {name: env_of(name, values) for name in c.AIRFLOW_SERVICES}
    for setting, variable in SECRETS.items():
        assert {env[setting] for env in envs.values()} == {values[variable]}, setting
        assert len(values[variable]) >= 32
    assert len({values[v] for v in SECRETS.values()}) == len(SECRETS)  # three secrets, not one reused
    Fernet(values["AIRFLOW_FERNET_KEY"].encode())  # a valid fernet key, or Airflow refuses it
    assert envs["api-server"]["AIRFLOW_ADMIN_PASSWORD"] == values["AIRFLOW_ADMIN_PASSWORD"] != ""


def test_without_init_env_compose_refuses_to_start_and_says_what_to_run():
    with pytest.raises(c.MissingVariable, match=r"AIRFLOW_\w+ is missing a value: run ./scripts/init-env first"):
        env_of("scheduler", {})


def test_init_env_generates_the_secrets_once_and_keeps_them(dotenv):
    first = c.read_dotenv(dotenv)
    assert stat.S_IMODE(os.stat(dotenv).st_mode) == 0o600
    subprocess.run(["sh", str(c.INIT_ENV), str(dotenv)], check=True, capture_output=True)
    assert c.read_dotenv(dotenv) == first  # run again: nothing changes
    # a setting the user added survives, and a secret that went missing is filled again, alone
    lines = [x for x in dotenv.read_text().splitlines() if not x.startswith("AIRFLOW_JWT_SECRET=")]
    dotenv.write_text("\n".join(lines + ["TENANTLAKE_DEMO_AGENCIES=2"]) + "\n")
    subprocess.run(["sh", str(c.INIT_ENV), str(dotenv)], check=True, capture_output=True)
    again = c.read_dotenv(dotenv)
    assert again["AIRFLOW_JWT_SECRET"] not in ("", first["AIRFLOW_JWT_SECRET"])
    assert {k: v for k, v in again.items() if k != "AIRFLOW_JWT_SECRET"} == \
        {k: v for k, v in first.items() if k != "AIRFLOW_JWT_SECRET"} | {"TENANTLAKE_DEMO_AGENCIES": "2"}


def test_the_env_file_is_never_committed():
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO)
    assert ignored.returncode == 0, ".env must be in .gitignore: it holds the secrets"
    tracked = subprocess.run(["git", "ls-files", ".env"], cwd=REPO, capture_output=True, text=True).stdout
    assert tracked == ""
    assert all(v == "" for k, v in c.read_dotenv(c.ENV_EXAMPLE).items() if k in SECRETS.values())


def test_every_variable_is_defined_and_documented_with_the_same_default():
    used = c.variables(c.COMPOSE_FILE.read_text())
    generated = set(c.read_dotenv(c.ENV_EXAMPLE))  # the keys init-env fills (and .env.example lists bare)
    shown = c.documented()
    assert used, "no variable found: the parser is broken"
    for name, uses in used.items():
        assert name in shown, f"${{{name}}} is not documented in .env.example"
        defaults = {arg for op, arg in uses if op in (":-", "-")}
        required = any(op in (":?", "?") for op, _ in uses)
        assert len(defaults) <= 1, f"{name}: two different defaults {defaults}"
        assert defaults or required or name in generated, f"${{{name}}} has neither a default nor a value"
        if required:
            assert name in generated and not defaults, name
        for default in defaults:
            assert default in shown[name], f"{name}: .env.example shows {shown[name]}, compose defaults to {default!r}"


def test_init_script_gets_every_value_it_requires_and_creates_the_pool():
    script = (REPO / "scripts/airflow-init").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", script))
    env = SERVICES["airflow-init"]["environment"]
    assert required and required <= set(env) | set(c.image_env()), required - set(env)
    assert f"airflow pools set {POOL} " in script
    assert "airflow db migrate" in script and "python -m tenantlake.cli simulate" in script
    assert SERVICES["airflow-init"]["restart"] == "no"  # a one-shot: the others wait for it to complete
    for name in LONG_RUNNING:
        assert SERVICES[name]["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}, name


def test_mounted_paths_exist_and_land_where_the_code_reads_them():
    named = set(COMPOSE["volumes"])
    for name, service in SERVICES.items():
        for source, _target, mode in c.mounts(service):
            if source.startswith("./"):
                assert (REPO / source).exists(), (name, source)
                assert mode == "ro", f"{name}: {source} is code, mounted read-only"
            else:
                assert source in named, (name, source)
    env = c.service_env(SERVICES["scheduler"], {v: "x" for v in SECRETS.values()})
    for name in c.AIRFLOW_SERVICES:
        targets = {t: s for s, t, _ in c.mounts(SERVICES[name])}
        root = env["TENANTLAKE_ROOT"]
        for folder in ("dags", "sql", "expectations"):  # what the package reads under TENANTLAKE_ROOT
            assert targets[f"{root}/{folder}"] == f"./{folder}", (name, folder)
        assert targets[env["AIRFLOW__CORE__DAGS_FOLDER"]] == "./dags"
        assert targets[f"{env['AIRFLOW_HOME']}/plugins"] == "./plugins"  # Airflow's default plugins folder
        assert targets[env["TENANTLAKE_HOME"]] == "tenantlake-home"
        assert env["TENANTLAKE_LAKE"].startswith(env["TENANTLAKE_HOME"] + "/")


def test_one_logs_volume_shared_by_every_component():
    env = c.service_env(SERVICES["scheduler"], {v: "x" for v in SECRETS.values()})
    log_folder = env.get("AIRFLOW__LOGGING__BASE_LOG_FOLDER", f"{env['AIRFLOW_HOME']}/logs")  # Airflow's default
    volumes = {name: {t: s for s, t, _ in c.mounts(SERVICES[name])}.get(log_folder) for name in c.AIRFLOW_SERVICES}
    assert set(volumes.values()) == {"airflow-logs"}, volumes
    assert "airflow-logs" in COMPOSE["volumes"]


def test_celery_settings_fit_together():
    broker, backend = urlsplit(ANCHOR["AIRFLOW__CELERY__BROKER_URL"]), ANCHOR["AIRFLOW__CELERY__RESULT_BACKEND"]
    assert broker.scheme == "redis" and broker.hostname in SERVICES and SERVICES[broker.hostname]["image"].startswith("redis:")
    # the result backend is a SQLAlchemy URL with the db+ prefix, on the metadata database
    metadata = urlsplit(ANCHOR["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    # with the driver named: SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3 (not installed)
    assert backend.startswith("db+postgresql+psycopg2://")
    import psycopg2  # noqa: F401 - the driver it names is installed
    result = urlsplit(backend.removeprefix("db+"))
    assert (result.hostname, result.username, result.password, result.path) == \
        (metadata.hostname, metadata.username, metadata.password, metadata.path)
    pg = SERVICES[metadata.hostname]["environment"]
    assert (metadata.username, metadata.password, metadata.path) == (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], "/" + pg["POSTGRES_DB"])
    concurrency = c.interpolate(ANCHOR["AIRFLOW__CELERY__WORKER_CONCURRENCY"], {})
    assert int(concurrency) > 0
    assert int(c.interpolate(ANCHOR["AIRFLOW__CORE__PARALLELISM"], {})) >= int(concurrency)
    assert SERVICES["worker"]["depends_on"]["redis"] == {"condition": "service_healthy"}
    # the executor is chosen with the profile: the documented command sets both
    header = c.COMPOSE_FILE.read_text().split("x-airflow-env")[0]
    assert "AIRFLOW_EXECUTOR=CeleryExecutor docker compose --profile celery up" in header
    assert ANCHOR["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"


def test_tasks_reach_the_api_server_and_wait_for_it():
    url = urlsplit(ANCHOR["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    api = SERVICES[url.hostname]
    assert url.hostname == "api-server" and url.path == "/execution/"
    assert f"{url.port}" in [p.split(":")[-1] for p in api["ports"]]  # the port it listens on
    assert f"localhost:{url.port}/" in " ".join(api["healthcheck"]["test"])
    for name in ("scheduler", "triggerer", "worker"):
        assert SERVICES[name]["depends_on"]["api-server"] == {"condition": "service_healthy"}, name


def test_the_image_installs_the_package_with_the_same_pins():
    lines = c.dockerfile_lines()
    requirements = (REPO / "requirements.txt").read_text()
    airflow = re.search(r"^apache-airflow==(\S+)$", requirements, re.M).group(1)
    python = re.search(r'requires-python = ">=(3\.\d+)', (REPO / "pyproject.toml").read_text()).group(1)
    assert lines[0] == f"FROM apache/airflow:slim-{airflow}-python{python}"  # no providers but ours
    assert SERVICES["scheduler"]["image"] == f"tenantlake-airflow:{airflow}"
    install_deps = lines.index("RUN pip install --no-cache-dir -r /opt/tenantlake/requirements.txt "
                               "-c /opt/tenantlake/constraints.txt")
    copy_src = lines.index("COPY --chown=airflow:0 src /opt/tenantlake/src")
    install_pkg = lines.index("RUN pip install --no-cache-dir --no-deps /opt/tenantlake")
    assert install_deps < copy_src < install_pkg
    assert not any("pip install -e" in x or "--editable" in x for x in lines)
    env = c.image_env()
    assert env["TENANTLAKE_ROOT"] == "/opt/tenantlake"
    copies = c.image_copies()
    for folder in ("src", "scripts"):  # the image runs without mounts too
        assert copies[f"/opt/tenantlake/{folder}"] == folder
    # every file the package reads under TENANTLAKE_ROOT at run time is in the image, and mounted
    # over from the checkout (config/ was neither: refresh_core failed on its price table)
    read_at_run_time = [settings.REPO / "expectations", catalogue.SQL_ROOT, creditors.SEED, registry.DEFAULT_PATH,
                        ops_config.CONFIG / "prices.yaml", ops_config.CONFIG / "freshness.yaml", connections.IAM_DIR]
    mounted = {source.removeprefix("./"): target for source, target, _ in c.mounts(SERVICES["scheduler"])}
    for path in read_at_run_time:
        folder = path.relative_to(settings.REPO).parts[0]
        assert copies.get(f"/opt/tenantlake/{folder}") == folder, f"the image lacks {folder}/ ({path})"
        assert mounted.get(folder) == f"/opt/tenantlake/{folder}", f"compose does not mount ./{folder}"
    assert copies[env["AIRFLOW__CORE__DAGS_FOLDER"]] == "dags"


def test_pins_for_every_service():
    for name, service in SERVICES.items():
        if "build" not in service:
            image, _, tag = service["image"].partition(":")
            # a release, not a moving tag (PostgreSQL's releases are major.minor since 10)
            assert re.fullmatch(r"\d+\.\d+(\.\d+)?", tag), f"{name}: {service['image']} is not pinned to a release"
    requirements = [x.split("#")[0].strip() for x in (REPO / "requirements.txt").read_text().splitlines()]
    requirements = [x for x in requirements if x]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[\w.]+", x) for x in requirements), requirements
    pins = dict(x.split("==") for x in requirements)
    # what the services need: PostgreSQL drivers (sync and async), Celery 5.6 (5.7 breaks this
    # Airflow's Celery executor), its provider and the Redis client
    for package in ("psycopg2-binary", "asyncpg", "apache-airflow-providers-celery", "celery", "redis"):
        assert package in pins, package
    assert pins["celery"].startswith("5.6.")
    def norm(name):  # PEP 503
        return re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()

    constraints = {norm(k): v for k, v in (x.split("==") for x in (REPO / "constraints.txt").read_text().split())}
    for package, version in pins.items():  # the image installs with both files: they must agree
        assert constraints.get(norm(package)) == version, package
