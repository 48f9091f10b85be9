"""The services test: docker-compose's Airflow services, run as processes on this machine's
PostgreSQL, green end to end through the REST API, with marts equal to the simulator's truth.

What comes from the repository as a user gets it: the .env written by scripts/init-env (plus the
demo-size lines a user may add to .env), docker-compose.yml's environment and commands, the
Dockerfile's ENV and COPY lines, the mounts. What is overridden is host-specific only: the
database URL (a database of its own per run), the ports (free ones), the hosts (127.0.0.1 for the
service names), and two test choices: DAGs start paused so the run under test is the one triggered
through the API, and a registry of the simulated agencies only (the shipped one lists five).
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import time
import uuid
from decimal import Decimal
from urllib.parse import urlsplit

import duckdb
import httpx
import pytest
import yaml

from tenantlake.registry import DEFAULT_PATH
from tests.services import compose as c
from tests.services.stack import Stack, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

AGENCIES = 2
DEMO = {  # lines a user may add to .env for a smaller demo fleet
    "TENANTLAKE_DEMO_AGENCIES": str(AGENCIES), "TENANTLAKE_DEMO_CONSUMERS": "60", "TENANTLAKE_DEMO_DAYS": "2",
    "TENANTLAKE_DEMO_WARMUP_DAYS": "20", "TENANTLAKE_DEMO_DEFECTS": "0",
}
SERVICES = ["api-server", "scheduler", "dag-processor", "triggerer"]  # started in this order, after init
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS = ("127.0.0.1", 6379)
DEADLINE = 420  # seconds, from the trigger to both DAGs done


@pytest.fixture
def database():
    """A PostgreSQL database of this run's own, dropped at the end."""
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = psycopg2.connect(dbname="postgres", connect_timeout=3, **PG)
    except psycopg2.OperationalError as e:
        pytest.skip(f"no PostgreSQL answering on {PG['host']}:{PG['port']} as {PG['user']}: {e}".strip())
    admin.autocommit = True
    name = f"tenantlake_services_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["LocalExecutor", "CeleryExecutor"])
def executor(request):
    """The default, and the celery profile (a worker on this machine's Redis as the broker, results
    in the run's PostgreSQL database). Each takes about two minutes from init to green here;
    TENANTLAKE_SERVICES_CELERY=0 leaves the celery one out on a machine short of time."""
    if request.param == "CeleryExecutor":
        if os.environ.get("TENANTLAKE_SERVICES_CELERY") == "0":
            pytest.skip("the celery profile was switched off (TENANTLAKE_SERVICES_CELERY=0)")
        try:
            socket.create_connection(REDIS, timeout=3).close()
        except OSError as e:
            pytest.skip(f"no Redis answering on {REDIS[0]}:{REDIS[1]} for the celery profile: {e}")
    return request.param


@pytest.fixture
def stack(tmp_path):
    s = Stack(tmp_path)
    try:
        yield s
    finally:
        s.stop()


def api(base: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base, headers=headers, timeout=30)


def wait_for(what: str, check, stack: Stack, timeout: float, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while True:
        stack.check_running()
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def test_compose_services_run_both_dags_green_to_the_truth(tmp_path, database, executor, stack, capsys):
    # .env exactly as a newcomer gets it, plus a smaller demo fleet (and the executor, as the
    # header of docker-compose.yml says for the celery profile)
    dotenv_path = tmp_path / ".env"
    subprocess.run(["sh", str(c.INIT_ENV), str(dotenv_path)], check=True, capture_output=True)
    with dotenv_path.open("a") as f:
        f.writelines(f"{k}={v}\n" for k, v in DEMO.items())
        if executor != "LocalExecutor":
            f.write(f"AIRFLOW_EXECUTOR={executor}\n")
    services = SERVICES + (["worker"] if executor == "CeleryExecutor" else [])
    dotenv = c.read_dotenv(dotenv_path)

    registry = yaml.safe_load(DEFAULT_PATH.read_text())
    registry["tenants"] = registry["tenants"][:AGENCIES]  # the simulator takes the first enabled ones
    (tmp_path / "tenants.yaml").write_text(yaml.safe_dump(registry))
    tenants = [t["tenant_id"] for t in registry["tenants"]]

    compose = c.load()
    port = free_port()
    shared = c.service_env(compose["services"]["scheduler"], dotenv)
    pg = urlsplit(database)

    def rehost(url: str, netloc: str, path: str) -> str:  # compose's scheme and driver, this host's address
        return urlsplit(url)._replace(netloc=netloc, path=path).geturl()

    overrides = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": rehost(shared["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], pg.netloc, pg.path),
        # Celery: a Redis database of this run's own (the index is all it has), results in its database
        "AIRFLOW__CELERY__BROKER_URL": rehost(shared["AIRFLOW__CELERY__BROKER_URL"], f"{REDIS[0]}:{REDIS[1]}",
                                              f"/{random.randrange(1, 16)}"),
        "AIRFLOW__CELERY__RESULT_BACKEND": rehost(shared["AIRFLOW__CELERY__RESULT_BACKEND"], pg.netloc, pg.path),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "true",
        "TENANTLAKE_REGISTRY": str(tmp_path / "tenants.yaml"),
    }
    envs, filesystems = {}, {}
    for name in ["airflow-init", *services]:
        service = compose["services"][name]
        env = c.service_env(service, dotenv)
        assert env["AIRFLOW__CORE__EXECUTOR"] == executor
        # the service names resolve to this machine
        url = env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
        assert url == "http://api-server:8080/execution/"
        filesystems[name] = stack.container(name, service)
        envs[name] = stack.process_env(filesystems[name], env, overrides | {
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": url.replace("api-server:8080", f"127.0.0.1:{port}")})
    base = f"http://127.0.0.1:{port}"
    home = stack.volume("tenantlake-home")

    try:
        started = time.monotonic()
        init = compose["services"]["airflow-init"]
        stack.run("airflow-init", c.entrypoint_argv(init), envs["airflow-init"], filesystems["airflow-init"], 300)
        truth = json.loads((home / "truth/aggregates.json").read_text())["tenants"]
        assert sorted(truth) == tenants
        for name in services:
            stack.start(name, c.entrypoint_argv(compose["services"][name]), envs[name], filesystems[name])

        # the api-server's healthcheck URL, as compose probes it
        health = compose["services"]["api-server"]["healthcheck"]["test"][-1].replace("localhost:8080", f"127.0.0.1:{port}")

        def healthy():
            try:
                return httpx.get(health, timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_for("the api-server's health check", healthy, stack, 120, every=1)

        # log in as the README says: the admin user, the password init-env wrote into .env
        assert httpx.post(f"{base}/auth/token", json={"username": "admin", "password": "wrong"}).status_code == 401
        assert api(base).get("/api/v2/dags").status_code == 401
        login = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": dotenv["AIRFLOW_ADMIN_PASSWORD"]})
        assert login.status_code == 201, login.text
        client = api(base, login.json()["access_token"])

        def parsed():
            dags = client.get("/api/v2/dags").json()["dags"]
            return {d["dag_id"] for d in dags} >= {"tenant_exports", "warehouse_load"}

        wait_for("the dag-processor to parse both DAGs", parsed, stack, 180)
        # Trigger first, for the logical date the scheduler would run next, then unpause: the
        # scheduler finds that run already there and makes no second one.
        next_run = client.get("/api/v2/dags/tenant_exports").json()["next_dagrun_logical_date"]
        r = client.post("/api/v2/dags/tenant_exports/dagRuns", json={"logical_date": next_run})
        assert r.status_code == 200, r.text
        run_id = r.json()["dag_run_id"]
        for dag_id in ("tenant_exports", "warehouse_load"):
            r = client.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False})
            assert r.status_code == 200 and r.json()["is_paused"] is False, r.text
        triggered = time.monotonic()

        def no_failed_tasks():  # fail now, not after the DAGs' retry delays
            broken = client.get("/api/v2/dags/~/dagRuns/~/taskInstances",
                                params={"state": ["failed", "up_for_retry"]}).json()["task_instances"]
            assert not broken, "tasks failed: " + ", ".join(
                f"{t['dag_id']}.{t['task_id']}[{t['map_index']}] {t['state']}" for t in broken)

        def exports_done():
            no_failed_tasks()
            state = client.get(f"/api/v2/dags/tenant_exports/dagRuns/{run_id}").json()["state"]
            return state if state in ("success", "failed") else None

        assert wait_for("tenant_exports to finish", exports_done, stack, DEADLINE) == "success"

        # warehouse_load runs on the assets tenant_exports updated: possibly several times while
        # the exports publish. Settled when no run of either DAG is left to finish and no asset
        # event waits (a scheduled tenant_exports run may start if the clock passes the hour).
        def settled():
            no_failed_tasks()
            runs = {d: client.get(f"/api/v2/dags/{d}/dagRuns").json()["dag_runs"]
                    for d in ("tenant_exports", "warehouse_load")}
            queued = client.get("/api/v2/dags/warehouse_load/assets/queuedEvents")
            waiting = queued.status_code == 200 and queued.json()["total_entries"] > 0
            done = all(r["state"] in ("success", "failed") for rs in runs.values() for r in rs)
            return runs if runs["warehouse_load"] and done and not waiting else None

        runs = wait_for("warehouse_load to finish", settled, stack, DEADLINE - (time.monotonic() - triggered))
        assert {r["state"] for rs in runs.values() for r in rs} == {"success"}, runs
        assert {r["run_type"] for r in runs["warehouse_load"]} == {"asset_triggered"}
        tis = client.get(f"/api/v2/dags/tenant_exports/dagRuns/{run_id}/taskInstances",
                         params={"limit": 1000}).json()["task_instances"]
        # green: every task succeeded, bar mapped tasks with nothing to map over (skipped)
        assert {t["state"] for t in tis} <= {"success", "skipped"} and any(t["state"] == "success" for t in tis)
        # the UI shows a task's log (the api-server reads the logs volume the scheduler's tasks write)
        log = client.get(f"/api/v2/dags/tenant_exports/dagRuns/{run_id}/taskInstances/report/logs/1",
                         headers={"Accept": "application/x-ndjson"})
        assert log.status_code == 200 and "Done. Returned value was" in log.text, log.text[-2000:]

        con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
        rows = con.execute("SELECT tenant_id, debt_balance, enrolled_debt, live_debts, active_plans "
                           "FROM mart.agency_snapshot").fetchall()
        con.close()
        assert {t: (b, e, n, p) for t, b, e, n, p in rows} == {
            t: (Decimal(truth[t]["debt_balance"]), Decimal(truth[t]["enrolled_debt"]),
                truth[t]["live_items"]["Debt"], truth[t]["plans_by_status"].get("ACTIVE", 0)) for t in tenants}
        with capsys.disabled():
            print(f"\nservices test ({executor}): init to green in {time.monotonic() - started:.0f} s "
                  f"(trigger to green {time.monotonic() - triggered:.0f} s, {len(runs['warehouse_load'])} warehouse_load runs)")
    except BaseException:
        print(stack.dump())  # pytest shows it with the failure
        raise
