# The Airflow image with tenantlake installed as a package (the same pins as `make test`).
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt constraints.txt /opt/tenantlake/
RUN pip install --no-cache-dir -r /opt/tenantlake/requirements.txt -c /opt/tenantlake/constraints.txt
COPY --chown=airflow:root pyproject.toml README.md /opt/tenantlake/
COPY --chown=airflow:root src /opt/tenantlake/src
RUN pip install --no-cache-dir --no-deps /opt/tenantlake
# dags/, sql/ and expectations/ are found under TENANTLAKE_ROOT (docker-compose mounts them there).
ENV TENANTLAKE_ROOT=/opt/tenantlake
