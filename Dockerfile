# The Airflow image with tenantlake installed as a package (the same pins as `make test`).
# The Airflow version and Python minor here must match requirements.txt and pyproject.toml
# (tests/test_compose.py checks it). The slim image (core Airflow, no providers): the regular one
# comes with some twenty providers that constraints.txt does not know, and installing our pins over
# them moves libraries they were built against (SQLAlchemy, protobuf, Flask) with only a warning.
# On slim, the image holds what the tests ran: requirements.txt with constraints.txt, nothing else.
FROM apache/airflow:slim-3.3.2-python3.11

# Folders the airflow user must own before Compose mounts named volumes on them: a new named
# volume takes the owner of the image folder it is mounted on, and one Docker has to create is
# root's, so the simulator and the DuckDB warehouse could not write to it. Group 0 and g+rwX, as
# the base image does, so the image also runs under an arbitrary uid with gid 0.
USER root
RUN install -d -o airflow -g 0 -m 2775 /opt/tenantlake /opt/airflow/tenantlake-home
USER airflow

# Dependencies first, so editing the code does not reinstall them. Pinned: requirements.txt holds
# the direct dependencies (Celery 5.6, the PostgreSQL drivers, redis, the providers), and
# constraints.txt everything they pull in.
COPY --chown=airflow:0 requirements.txt constraints.txt /opt/tenantlake/
RUN pip install --no-cache-dir -r /opt/tenantlake/requirements.txt -c /opt/tenantlake/constraints.txt

# The package itself, not editable: the image works without the source tree mounted.
COPY --chown=airflow:0 pyproject.toml README.md /opt/tenantlake/
COPY --chown=airflow:0 src /opt/tenantlake/src
RUN pip install --no-cache-dir --no-deps /opt/tenantlake

# What the package reads at run time under TENANTLAKE_ROOT (the registry in dags/registry, sql/,
# expectations/, config/ for prices and freshness objectives, iam/ for the access policies) and the DAGs and scripts, baked in so the image runs on its own; docker-compose
# mounts the checkout's copies over them, so edits show without a rebuild.
COPY --chown=airflow:0 dags /opt/tenantlake/dags
COPY --chown=airflow:0 sql /opt/tenantlake/sql
COPY --chown=airflow:0 expectations /opt/tenantlake/expectations
COPY --chown=airflow:0 config /opt/tenantlake/config
COPY --chown=airflow:0 iam /opt/tenantlake/iam
COPY --chown=airflow:0 scripts /opt/tenantlake/scripts
COPY --chown=airflow:0 plugins /opt/airflow/plugins
ENV TENANTLAKE_ROOT=/opt/tenantlake \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/tenantlake/dags
